"""The TensorFlow tensor-bundle reader, on bundles written here from the documented format.

The writer below is independent of the reader: it follows tensorflow/core/lib/io/table_builder
and block_builder (LevelDB SSTable: prefix-compressed entries with restart points, 5-byte block
trailers with masked CRC32C, index block, 48-byte footer) and tensor_bundle.proto field numbers.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from audiorec.backends import tf_bundle
from audiorec.backends.tf_bundle import BundleFormatError, TensorBundle, crc32c, mask_crc, unmask_crc

# --------------------------------------------------------------------------- a minimal writer


def varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_varint(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def pb_bytes(field: int, value: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(value)) + value


def pb_fixed32(field: int, value: int) -> bytes:
    return varint(field << 3 | 5) + struct.pack("<I", value)


def crc32c_bitwise(data: bytes) -> int:
    """Bit-at-a-time CRC-32C straight from the polynomial: the reference for the reader's tables."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def build_block(entries: list[tuple[bytes, bytes]], restart_interval: int = 2) -> bytes:
    out = bytearray()
    restarts = []
    last = b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(last), len(key)) and last[shared] == key[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        last = key
    for r in restarts or [0]:
        out += struct.pack("<I", r)
    out += struct.pack("<I", len(restarts or [0]))
    return bytes(out)


def write_table(path: Path, items: list[tuple[bytes, bytes]], entries_per_block: int = 3) -> None:
    """An SSTable of sorted `items`, several data blocks, uncompressed."""
    items = sorted(items)
    out = bytearray()
    index_entries = []

    def emit(block: bytes) -> tuple[int, int]:
        offset = len(out)
        out.extend(block)
        trailer_type = b"\x00"
        out.extend(trailer_type)
        out.extend(struct.pack("<I", mask_crc(crc32c_bitwise(block + trailer_type))))
        return offset, len(block)

    for start in range(0, len(items), entries_per_block):
        chunk = items[start : start + entries_per_block]
        offset, size = emit(build_block(chunk))
        index_entries.append((chunk[-1][0], varint(offset) + varint(size)))
    meta_offset, meta_size = emit(build_block([]))
    index_offset, index_size = emit(build_block(index_entries, restart_interval=1))
    handles = varint(meta_offset) + varint(meta_size) + varint(index_offset) + varint(index_size)
    out += handles + b"\x00" * (40 - len(handles)) + struct.pack("<Q", tf_bundle.TABLE_MAGIC)
    path.write_bytes(bytes(out))


def write_bundle(prefix: Path, tensors: dict[str, np.ndarray], shards: int = 1) -> None:
    """A tensor bundle: header under "", one BundleEntryProto per tensor, raw bytes in .data shards."""
    datas = [bytearray() for _ in range(shards)]
    items = [(b"", pb_varint(1, shards) + pb_varint(2, 0) + pb_bytes(3, pb_varint(1, 1)))]
    for i, (name, array) in enumerate(sorted(tensors.items())):
        shard = i % shards
        array = np.array(array, order="C")  # (ascontiguousarray would turn a scalar into shape (1,))
        raw = array.tobytes()
        shape = b"".join(pb_bytes(2, pb_varint(1, d)) for d in array.shape)
        entry = (
            pb_varint(1, tf_bundle.NUMPY_TO_TF[array.dtype.str])
            + pb_bytes(2, shape)
            + (pb_varint(3, shard) if shard else b"")
            + (pb_varint(4, len(datas[shard])) if datas[shard] else b"")
            + pb_varint(5, len(raw))
            + pb_fixed32(6, mask_crc(crc32c_bitwise(raw)))
        )
        datas[shard] += raw
        items.append((name.encode(), entry))
    write_table(prefix.with_name(prefix.name + ".index"), items)
    for s, data in enumerate(datas):
        prefix.with_name(f"{prefix.name}.data-{s:05d}-of-{shards:05d}").write_bytes(bytes(data))


def sample_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "conv2d/kernel": rng.standard_normal((7, 38, 1, 4)).astype(np.float32),
        "conv2d/bias": rng.standard_normal(4).astype(np.float32),
        "conv2d/kernel/Adam": rng.standard_normal((7, 38, 1, 4)).astype(np.float32),
        "batch_normalization/gamma": np.array([1.5], dtype=np.float32),
        "beta1_power": np.array(0.9, dtype=np.float32),  # a scalar: shape ()
        "global_step": np.array(12345678901, dtype=np.int64),
        "half": np.arange(6, dtype=np.float16).reshape(2, 3),
        "doubles": rng.standard_normal((3, 2)),
        "ints": np.array([-1, 0, 7], dtype=np.int32),
        "empty": np.zeros((0, 5), dtype=np.float32),
    }


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0xE3069283),  # the CRC-32C check value
        (b"\x00" * 32, 0x8A9136AA),  # RFC 3720 B.4
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (b"", 0),
    ],
)
def test_crc32c_known_values(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected


@pytest.mark.parametrize("n", [4095, 4096, 70_001, 300_000])
def test_crc32c_chunked_path_matches_bitwise(n: int) -> None:
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8).tobytes()
    assert crc32c(data) == crc32c_bitwise(data)


def test_mask_roundtrip() -> None:
    for v in (0, 1, 0xFFFFFFFF, 0xE3069283):
        assert unmask_crc(mask_crc(v)) == v


@pytest.mark.parametrize("shards", [1, 2])
def test_round_trip(tmp_path: Path, shards: int) -> None:
    tensors = sample_tensors()
    write_bundle(tmp_path / "model", tensors, shards=shards)
    bundle = TensorBundle(tmp_path / "model")
    assert bundle.names() == sorted(tensors)
    assert bundle.header.num_shards == shards
    for name, expected in tensors.items():
        got = bundle.read(name)
        assert got.dtype == expected.dtype, name
        assert got.shape == expected.shape, name
        np.testing.assert_array_equal(got, expected)
    assert bundle.entry("conv2d/kernel").shape == (7, 38, 1, 4)


def test_empty_prefix_bundle_in_a_directory(tmp_path: Path) -> None:
    """musicnn's checkpoints are named `.index`/`.data-...`: open them by directory."""
    tensors = {"a": np.ones(3, np.float32)}
    (tmp_path / "ckpt").mkdir()
    write_bundle(tmp_path / "ckpt" / "x", tensors)
    for f in (tmp_path / "ckpt").iterdir():
        f.rename(f.with_name(f.name[1:]))  # "x.index" -> ".index"
    bundle = TensorBundle(tmp_path / "ckpt")
    np.testing.assert_array_equal(bundle.read("a"), tensors["a"])
    np.testing.assert_array_equal(TensorBundle(tmp_path / "ckpt" / ".index").read("a"), tensors["a"])


def test_corrupt_tensor_bytes_fail_the_crc(tmp_path: Path) -> None:
    tensors = {"a": np.arange(10, dtype=np.float32), "b": np.ones(4, np.float32)}
    write_bundle(tmp_path / "m", tensors)
    data = tmp_path / "m.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[5] ^= 0x40  # inside tensor "a"
    data.write_bytes(bytes(raw))
    bundle = TensorBundle(tmp_path / "m")
    np.testing.assert_array_equal(bundle.read("b"), tensors["b"])
    with pytest.raises(BundleFormatError, match="'a' fails its CRC32C"):
        bundle.read("a")
    assert TensorBundle(tmp_path / "m", verify=False).read("a").shape == (10,)


def test_corrupt_index_block_is_detected(tmp_path: Path) -> None:
    write_bundle(tmp_path / "m", {"a": np.ones(2, np.float32)})
    index = tmp_path / "m.index"
    raw = bytearray(index.read_bytes())
    raw[3] ^= 0x01
    index.write_bytes(bytes(raw))
    with pytest.raises(BundleFormatError, match="CRC32C"):
        TensorBundle(tmp_path / "m")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "m.index").write_bytes(b"\x00" * 100)
    with pytest.raises(BundleFormatError, match="bad SSTable magic"):
        TensorBundle(tmp_path / "m")
    with pytest.raises(BundleFormatError, match="not found"):
        TensorBundle(tmp_path / "missing")


def test_unknown_tensor_name(tmp_path: Path) -> None:
    write_bundle(tmp_path / "m", {"a": np.ones(2, np.float32)})
    with pytest.raises(KeyError, match="no tensor named 'b'"):
        TensorBundle(tmp_path / "m").read("b")


def test_protobuf_negative_and_large_varints() -> None:
    msg = pb_varint(4, -1) + pb_varint(5, 2**40) + pb_fixed32(6, 7)
    fields = list(tf_bundle.iter_fields(msg))
    assert fields[0] == (4, 0, 2**64 - 1)
    entry = tf_bundle.parse_entry(msg)
    assert entry.offset == -1 and entry.size == 2**40 and entry.crc32c == 7
