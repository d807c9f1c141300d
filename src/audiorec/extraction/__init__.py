"""The shared extraction engine: track index, decoding, batching, sharding, the HDF5 cache.

`jobs` holds what the workflow's scripts call; `engine` the batching loop; `shards` the
resumable per-shard runner; `gather` the merge into `{backend}.h5`; `store` the file format.
"""
