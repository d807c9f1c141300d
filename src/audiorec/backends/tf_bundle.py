"""Read TensorFlow checkpoints (the "tensor bundle" format) without TensorFlow.

Why by hand: the MusiCNN weights ship as a TF1 checkpoint inside the `musicnn` wheel, and
neither TensorFlow nor protobuf should become a dependency just to read 2 MB of floats.

The format (tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc}):

* `<prefix>.index` is a LevelDB-format SSTable (tensorflow/core/lib/io/table*): data blocks
  of prefix-compressed key/value entries, each block followed by a 1-byte compression type
  and a masked CRC32C; an index block mapping the last key of each data block to its
  BlockHandle; a 48-byte footer (metaindex + index BlockHandles, magic 0xdb4775248b80fb57).
* The entry under the empty key is a `BundleHeaderProto` (num_shards, endianness, version);
  every other key is a tensor name whose value is a `BundleEntryProto`
  (dtype, shape, shard_id, offset, size, crc32c of the bytes).
* `<prefix>.data-0000s-of-0000n` hold the raw little-endian tensor bytes at those offsets.

Protobufs are decoded from the wire format directly (varints and length-delimited fields).
Both the block CRCs of the index and the per-tensor CRC32C of the data are verified.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # 2 BlockHandles padded to 40 bytes + 8-byte magic
BLOCK_TRAILER_SIZE = 5  # compression type (1) + masked crc32c (4)
CRC_MASK_DELTA = 0xA282EAD8

#: tensorflow/core/framework/types.proto DataType -> numpy dtype (little-endian)
TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}
NUMPY_TO_TF: dict[str, int] = {dt.str: code for code, dt in TF_DTYPES.items()}


class BundleFormatError(ValueError):
    """The files are not a readable tensor bundle; the message names the file and what is wrong."""


# --------------------------------------------------------------------------- CRC32C


def _crc32c_table() -> np.ndarray:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table[i] = c
    return table


_TABLE = _crc32c_table()
_TABLE_LIST = [int(v) for v in _TABLE]


def _crc_register_scalar(reg: int, data: bytes | memoryview) -> int:
    table = _TABLE_LIST
    for b in bytes(data):
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _crc_registers(chunks: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Run the raw CRC register over every row of `chunks` [K, L] (uint8) at once."""
    reg = start.astype(np.uint32).copy()
    eight = np.uint32(8)
    mask = np.uint32(0xFF)
    for j in range(chunks.shape[1]):
        reg = _TABLE[(reg ^ chunks[:, j]) & mask] ^ (reg >> eight)
    return reg


def crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """CRC-32C (Castagnoli) of `data`, as TensorFlow and LevelDB compute it.

    Pure Python would take seconds per megabyte, so the buffer is cut into K equal chunks
    whose raw CRC registers are computed side by side with NumPy, then chained: the raw
    register update is linear over GF(2), so reg(chunk_k | prev) = shift_L(prev) ^ reg(chunk_k | 0),
    where shift_L (feeding L zero bytes) is itself linear and tabulated on the 32 basis bits.
    """
    buf = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), dtype=np.uint8)
    n = buf.size
    reg = 0xFFFFFFFF
    if n < 4096:
        return _crc_register_scalar(reg, buf.tobytes()) ^ 0xFFFFFFFF
    k = min(2048, n // 64)
    length = n // k
    body = buf[: k * length].reshape(k, length)
    chunk_regs = _crc_registers(body, np.zeros(k, dtype=np.uint32))
    basis = np.array([1 << i for i in range(32)], dtype=np.uint32)
    shifted = _crc_registers(np.zeros((32, length), dtype=np.uint8), basis)
    shift_cols = [int(v) for v in shifted]
    for c in chunk_regs:
        s = 0
        r = reg
        i = 0
        while r:
            if r & 1:
                s ^= shift_cols[i]
            r >>= 1
            i += 1
        reg = s ^ int(c)
    reg = _crc_register_scalar(reg, buf[k * length :].tobytes())
    return reg ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """LevelDB/TF store CRCs 'masked' so that CRCs of data that holds CRCs stay well mixed."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + CRC_MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rot = (masked - CRC_MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --------------------------------------------------------------------------- protobuf wire format


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise BundleFormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BundleFormatError("varint longer than 10 bytes")


def iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of a serialized protobuf message.

    Varints come back as (unsigned) ints, fixed32/fixed64 as ints, length-delimited fields as bytes.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            value = bytes(buf[pos : pos + size])
            if len(value) != size:
                raise BundleFormatError("truncated length-delimited field")
            pos += size
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise BundleFormatError(f"unsupported protobuf wire type {wire} (field {field})")
        yield field, wire, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass(frozen=True)
class BundleHeader:
    num_shards: int
    endianness: int  # 0 little, 1 big
    producer: int


@dataclass(frozen=True)
class BundleEntry:
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None  # masked, as stored
    has_slices: bool


def parse_header(buf: bytes) -> BundleHeader:
    num_shards, endianness, producer = 0, 0, 0
    for field, _, value in iter_fields(buf):
        if field == 1:
            num_shards = int(value)  # type: ignore[arg-type]
        elif field == 2:
            endianness = int(value)  # type: ignore[arg-type]
        elif field == 3:
            for f, _, v in iter_fields(value):  # type: ignore[arg-type]
                if f == 1:
                    producer = int(v)  # type: ignore[arg-type]
    return BundleHeader(num_shards, endianness, producer)


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims: list[int] = []
    for field, _, value in iter_fields(buf):
        if field == 2:  # repeated Dim
            size = 0
            for f, _, v in iter_fields(value):  # type: ignore[arg-type]
                if f == 1:
                    size = _signed64(int(v))  # type: ignore[arg-type]
            dims.append(size)
        elif field == 3 and value:
            raise BundleFormatError("tensor of unknown rank")
    return tuple(dims)


def parse_entry(buf: bytes) -> BundleEntry:
    dtype, shape, shard_id, offset, size, crc, slices = 0, (), 0, 0, 0, None, False
    for field, _, value in iter_fields(buf):
        if field == 1:
            dtype = int(value)  # type: ignore[arg-type]
        elif field == 2:
            shape = _parse_shape(value)  # type: ignore[arg-type]
        elif field == 3:
            shard_id = int(value)  # type: ignore[arg-type]
        elif field == 4:
            offset = _signed64(int(value))  # type: ignore[arg-type]
        elif field == 5:
            size = _signed64(int(value))  # type: ignore[arg-type]
        elif field == 6:
            crc = int(value)  # type: ignore[arg-type]
        elif field == 7:
            slices = True
    return BundleEntry(dtype, shape, shard_id, offset, size, crc, slices)


# --------------------------------------------------------------------------- SSTable


def _read_block(data: bytes, handle: tuple[int, int], path: Path) -> bytes:
    offset, size = handle
    if offset + size + BLOCK_TRAILER_SIZE > len(data):
        raise BundleFormatError(f"{path}: block at {offset}+{size} runs past the end of the file")
    contents = data[offset : offset + size]
    ctype = data[offset + size]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    if unmask_crc(stored) != crc32c(data[offset : offset + size + 1]):
        raise BundleFormatError(f"{path}: block at offset {offset} fails its CRC32C check (corrupt file)")
    if ctype != 0:
        raise BundleFormatError(
            f"{path}: block compression type {ctype} is not supported (TensorFlow writes bundles uncompressed)"
        )
    return contents


def _read_handle(buf: bytes, pos: int) -> tuple[tuple[int, int], int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return (offset, size), pos


def iter_block(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Key/value pairs of one SSTable block (keys are stored as shared prefix + suffix)."""
    if len(block) < 4:
        raise BundleFormatError("block shorter than its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise BundleFormatError("block restart array larger than the block")
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        if shared > len(key):
            raise BundleFormatError("block entry shares more bytes than the previous key has")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        value = block[pos : pos + value_len]
        pos += value_len
        yield key, value


def read_table(path: Path) -> dict[bytes, bytes]:
    """Every key/value pair of a LevelDB-format SSTable file."""
    data = Path(path).read_bytes()
    if len(data) < FOOTER_SIZE:
        raise BundleFormatError(f"{path}: too short to be an SSTable ({len(data)} bytes)")
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, 40)
    if magic != TABLE_MAGIC:
        raise BundleFormatError(f"{path}: not a TensorFlow checkpoint index (bad SSTable magic {magic:#x})")
    _metaindex, pos = _read_handle(footer, 0)
    index_handle, _ = _read_handle(footer, pos)
    entries: dict[bytes, bytes] = {}
    for _, handle_bytes in iter_block(_read_block(data, index_handle, path)):
        handle, _ = _read_handle(handle_bytes, 0)
        for key, value in iter_block(_read_block(data, handle, path)):
            entries[key] = value
    return entries


# --------------------------------------------------------------------------- the bundle


def bundle_prefix(path: str | Path) -> tuple[Path, str]:
    """(directory, file-name prefix) of a bundle given its prefix, its `.index` file or a
    directory holding exactly one bundle.

    Returned as a pair because the prefix may be empty: the musicnn checkpoints were saved
    under a directory path, so their files are literally `.index` and `.data-00000-of-00001`.
    """
    p = Path(path)
    if p.name.endswith(".index") and p.is_file():
        return p.parent, p.name[: -len(".index")]
    if p.is_dir():
        indexes = sorted(q.name for q in p.iterdir() if q.name.endswith(".index"))
        if len(indexes) != 1:
            raise BundleFormatError(f"{p}: expected exactly one *.index checkpoint file, found {len(indexes)}")
        return p, indexes[0][: -len(".index")]
    return p.parent, p.name


class TensorBundle:
    """A TF checkpoint opened for reading: `names()`, `entry(name)`, `read(name)`, `read_all()`."""

    def __init__(self, path: str | Path, verify: bool = True) -> None:
        self.directory, self.prefix = bundle_prefix(path)
        self.index_path = self.directory / f"{self.prefix}.index"
        if not self.index_path.is_file():
            raise BundleFormatError(f"{self.index_path}: checkpoint index not found")
        self.verify = verify
        table = read_table(self.index_path)
        if b"" not in table:
            raise BundleFormatError(f"{self.index_path}: no BundleHeaderProto under the empty key")
        self.header = parse_header(table.pop(b""))
        if self.header.endianness != 0:
            raise BundleFormatError(f"{self.index_path}: big-endian bundles are not supported")
        self.entries = {k.decode("utf-8"): parse_entry(v) for k, v in table.items()}
        self._shards: dict[int, bytes] = {}

    def names(self) -> list[str]:
        return sorted(self.entries)

    def entry(self, name: str) -> BundleEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise KeyError(f"{self.index_path}: no tensor named {name!r}") from None

    def _shard(self, shard_id: int) -> bytes:
        if shard_id not in self._shards:
            n = self.header.num_shards
            path = self.directory / f"{self.prefix}.data-{shard_id:05d}-of-{n:05d}"
            if not path.is_file():
                raise BundleFormatError(f"{path}: checkpoint data shard not found")
            self._shards[shard_id] = path.read_bytes()
        return self._shards[shard_id]

    def read(self, name: str) -> np.ndarray:
        e = self.entry(name)
        if e.has_slices:
            raise BundleFormatError(f"{self.index_path}: tensor {name!r} is stored in slices (unsupported)")
        if e.dtype not in TF_DTYPES:
            raise BundleFormatError(f"{self.index_path}: tensor {name!r} has unsupported dtype code {e.dtype}")
        dtype = TF_DTYPES[e.dtype]
        data = self._shard(e.shard_id)
        raw = data[e.offset : e.offset + e.size]
        if len(raw) != e.size:
            raise BundleFormatError(f"{self.index_path}: tensor {name!r} runs past the end of its data shard")
        if self.verify and e.crc32c is not None and unmask_crc(e.crc32c) != crc32c(raw):
            raise BundleFormatError(f"{self.index_path}: tensor {name!r} fails its CRC32C check (corrupt data file)")
        count = int(np.prod(e.shape)) if e.shape else 1
        if count * dtype.itemsize != e.size:
            raise BundleFormatError(
                f"{self.index_path}: tensor {name!r} has {e.size} bytes, shape {e.shape} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(raw, dtype=dtype).reshape(e.shape).copy()

    def read_all(self) -> dict[str, np.ndarray]:
        return {name: self.read(name) for name in self.names()}
