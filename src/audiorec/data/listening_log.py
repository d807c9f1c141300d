"""Reading and validating a listening log in the Music4All-Onion layout, in bounded memory.

The real `userid_trackid_timestamp.tsv` has about 253 M rows (14 GB as text, 2.2 GB as
`.bz2`), so it is never loaded whole: the bytes are read (and, for `.bz2`, decompressed)
by a background thread in blocks cut at line ends, and each block is parsed by polars.
Decompression and parsing therefore overlap, memory stays at a few blocks whatever the
file size, and every row keeps its line number, so a malformed row can be reported as
"line N" rather than as a polars parse error somewhere in the file.

Malformed rows are either an error (the default) or skipped and counted per reason; the
caller decides. A row is malformed when it does not have exactly three tab-separated
fields, has an empty id, has a timestamp that does not match the format, or is not UTF-8.
"""

from __future__ import annotations

import bz2
import os
import queue
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import polars as pl

LOG_COLUMNS = ("user_id", "track_id", "timestamp")
DEFAULT_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_BLOCK_BYTES = 16 << 20  # below glibc's largest mmap threshold, so block buffers are reused

MalformedPolicy = Literal["error", "skip"]

# Reasons a row is malformed; also the suffixes of the `malformed_*` counts in stats.csv.
REASON_COLUMNS = "columns"
REASON_EMPTY_ID = "empty_id"
REASON_TIMESTAMP = "timestamp"
REASON_ENCODING = "encoding"
MALFORMED_REASONS = (REASON_COLUMNS, REASON_EMPTY_ID, REASON_TIMESTAMP, REASON_ENCODING)


class ListeningLogError(ValueError):
    """The listening log cannot be read as asked; the message names the file, line and fix."""


@dataclass
class ReadCounts:
    """What reading the log saw: data rows (header excluded) and malformed rows per reason."""

    rows: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    file_bytes: int = 0  # size of the file on disk (compressed, for .bz2)
    bytes_read: int = 0  # how far into the file on disk reading has got

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


@dataclass(frozen=True)
class _Block:
    data: bytes
    first_line: int  # 1-based line number of the block's first row in the file
    n_lines: int
    file_offset: int  # bytes of the file on disk consumed once this block was read


def open_log_bytes(raw: BinaryIO, path: Path) -> BinaryIO:
    """The log's bytes, decompressed on the fly when the name ends in `.bz2`.

    Python's bz2 module handles multi-stream files (pbzip2/lbzip2 output) and releases
    the GIL while decompressing, so the reader thread decompresses while polars parses.
    """
    if path.suffix == ".bz2":
        return bz2.BZ2File(raw, "rb")  # type: ignore[return-value]
    return raw


def _read_header(stream: BinaryIO, path: Path) -> tuple[list[str], bytes]:
    """Column names from the first line, and whatever followed it in the first read."""
    head = b""
    while b"\n" not in head:
        more = stream.read(1 << 16)
        if not more:
            break
        head += more
        if len(head) > 1 << 20:
            break
    line, _, rest = head.partition(b"\n")
    text = line.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r")
    names = text.split("\t")
    if sorted(names) != sorted(LOG_COLUMNS):
        if not text:
            raise ListeningLogError(f"{path} is empty: expected a header line and listening events.")
        raise ListeningLogError(
            f"{path}, line 1: expected the header 'user_id<TAB>track_id<TAB>timestamp' (any order), "
            f"found {text[:200]!r}. Add or correct the header line (the Music4All-Onion layout)."
        )
    return names, rest


def _blocks(stream: BinaryIO, raw: BinaryIO, first: bytes, block_bytes: int) -> Iterator[_Block]:
    """Blocks of whole lines, each knowing the line number of its first row."""
    line = 2
    carry = first
    eof = False
    while not eof:
        data = stream.read(block_bytes)
        eof = not data
        if eof:
            block, carry = carry, b""
        else:
            cut = data.rfind(b"\n")
            if cut < 0:
                carry += data
                continue
            # one copy per block: the carried partial line and the new data up to its last newline
            block, carry = b"".join((carry, memoryview(data)[: cut + 1])), data[cut + 1 :]
        if block:
            n = block.count(b"\n") + (not block.endswith(b"\n"))
            yield _Block(block, line, n, raw.tell())
            line += n


def _prefetch(blocks: Iterator[_Block], depth: int = 2) -> Iterator[_Block]:
    """Produce blocks in a background thread (disk reads and bz2 overlap parsing)."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for b in blocks:
                if not put(b):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put(exc)

    thread = threading.Thread(target=work, name="listening-log-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


def _describe(raw: bytes, timestamp_format: str, names: tuple[str, ...]) -> tuple[str, str]:
    """Why a flagged line is malformed: a reason (a stats key) and words for the error.

    Only called for the few rows the vectorised checks flagged, so clarity beats speed.
    """
    from datetime import datetime

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return REASON_ENCODING, "the line is not valid UTF-8"
    text = text.rstrip("\r")
    fields = text.split("\t")
    if len(fields) != 3:
        return REASON_COLUMNS, f"found {len(fields)} tab-separated field(s), expected 3 ({', '.join(names)})"
    values = dict(zip(names, fields, strict=True))
    for name in ("user_id", "track_id"):
        if values[name] == "":
            return REASON_EMPTY_ID, f"empty {name}"
    try:
        datetime.strptime(values["timestamp"], timestamp_format)
        how = "is not a valid date and time in"  # Python accepts what polars does not (e.g. no zero padding)
    except ValueError:
        how = "does not match"
    return REASON_TIMESTAMP, f"timestamp {values['timestamp']!r} {how} the format {timestamp_format!r}"


def _parse_fast(block: _Block, names: list[str]) -> pl.DataFrame | None:
    """Parse a block with polars; None when it cannot map rows one-to-one to lines."""
    try:
        df = pl.read_csv(
            block.data,
            has_header=False,
            separator="\t",
            quote_char=None,
            new_columns=names,
            schema=dict.fromkeys(names, pl.String),
            truncate_ragged_lines=False,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError:
        return None  # more than three fields on some line, invalid UTF-8, ...: the slow path is exact
    if df.height != block.n_lines:
        return None
    return df.select(LOG_COLUMNS)


def _parse_slow(block: _Block, names: list[str]) -> pl.DataFrame:
    """Parse a block line by line in Python (only for blocks the fast path refused).

    Lines with the wrong number of fields or invalid UTF-8 become all-null rows here and
    are classified, like every other bad row, by `_check`.
    """
    lines = block.data.split(b"\n")
    if block.data.endswith(b"\n"):
        lines.pop()
    cols: list[list[str | None]] = [[], [], []]
    for raw in lines:
        try:
            fields = raw.decode("utf-8").rstrip("\r").split("\t")
        except UnicodeDecodeError:
            fields = []
        if len(fields) != 3:
            fields = [None, None, None]  # type: ignore[list-item]
        for col, value in zip(cols, fields, strict=True):
            col.append(value if value != "" else None)
    df = pl.DataFrame(dict(zip(names, cols, strict=True)), schema=dict.fromkeys(names, pl.String))
    return df.select(LOG_COLUMNS)


def _check(
    df: pl.DataFrame,
    block: _Block,
    path: Path,
    names: list[str],
    timestamp_format: str,
    policy: MalformedPolicy,
    counts: ReadCounts,
    setting_hint: str,
) -> pl.DataFrame:
    """Parse timestamps and deal with malformed rows by the policy; returns the good rows."""
    df = df.with_columns(
        # cache=False: timestamps are nearly all distinct, and the cache halves the speed.
        pl.col("timestamp").str.to_datetime(timestamp_format, time_unit="us", strict=False, cache=False).alias("_ts"),
    )
    if any(df.get_column(c).null_count() for c in ("user_id", "track_id", "_ts")):  # counts are metadata: cheap
        flags = df.select(pl.any_horizontal(pl.col("user_id", "track_id", "_ts").is_null()).alias("bad"))["bad"]
        idx = flags.arg_true().to_list()
        lines = block.data.split(b"\n")
        if policy == "error":
            i = idx[0]
            _, why = _describe(lines[i], timestamp_format, tuple(names))
            raise ListeningLogError(
                f"{path}, line {block.first_line + i}: malformed row ({why}): {lines[i][:200]!r}. "
                f"Fix or delete that line, or {setting_hint} to skip and count malformed rows."
            )
        for i in idx:
            counts.malformed[_describe(lines[i], timestamp_format, tuple(names))[0]] += 1
        df = df.filter(~flags)
    return df.select("user_id", "track_id", pl.col("_ts").alias("timestamp"))


def read_log(
    path: str | os.PathLike[str],
    *,
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT,
    malformed_rows: MalformedPolicy = "error",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    counts: ReadCounts | None = None,
    setting_hint: str = "set `malformed_rows: skip` in the dataset's split settings",
) -> Iterator[pl.DataFrame]:
    """Frames of valid rows (`user_id` str, `track_id` str, `timestamp` datetime[us]), in file order.

    `counts` (if given) is filled as the file is read: data rows and malformed rows skipped
    per reason. Memory holds about three blocks of `block_bytes` text whatever the file size.
    """
    path = Path(path)
    if malformed_rows not in ("error", "skip"):
        raise ValueError(f"malformed_rows must be 'error' or 'skip', not {malformed_rows!r}")
    if not path.is_file():
        raise ListeningLogError(f"no listening log at {path}")
    counts = counts if counts is not None else ReadCounts()
    counts.file_bytes = path.stat().st_size
    with open(path, "rb") as raw, open_log_bytes(raw, path) as stream:
        try:
            names, first = _read_header(stream, path)
            for block in _prefetch(_blocks(stream, raw, first, block_bytes)):
                counts.rows += block.n_lines
                counts.bytes_read = block.file_offset
                df = _parse_fast(block, names)
                if df is None:
                    df = _parse_slow(block, names)
                yield _check(df, block, path, names, timestamp_format, malformed_rows, counts, setting_hint)
        except (OSError, EOFError) as exc:
            raise ListeningLogError(
                f"{path}: could not read the file ({exc}). If it is a .bz2, it may be truncated or corrupt: "
                f"check it with `bzip2 -t {path}` and download it again."
            ) from exc
