"""Reading and validating the listening log: layout, bz2, block boundaries, malformed rows."""

from __future__ import annotations

import bz2
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from audiorec.data.listening_log import ListeningLogError, ReadCounts, read_log

HEADER = "user_id\ttrack_id\ttimestamp\n"
GOOD = [
    ("u1", "t1", "2020-02-21 13:45:07"),
    ("u1", "t2", "2019-05-01 00:00:00"),
    ("u2", "t1", "1970-01-01 01:00:00"),
    ("u2", "t3", "2020-03-01 23:59:59"),
]


def write(path: Path, text: str | bytes, compress: bool = False) -> Path:
    data = text.encode() if isinstance(text, str) else text
    if compress:
        path = path.with_name(path.name + ".bz2")
        data = bz2.compress(data)
    path.write_bytes(data)
    return path


def body(rows: list[tuple[str, str, str]]) -> str:
    return "".join("\t".join(r) + "\n" for r in rows)


def read_all(path: Path, **kw) -> tuple[pl.DataFrame, ReadCounts]:
    counts = ReadCounts()
    frames = list(read_log(path, counts=counts, **kw))
    return pl.concat(frames) if frames else pl.DataFrame(), counts


def as_tuples(df: pl.DataFrame) -> list[tuple[str, str, str]]:
    return [(u, t, ts.strftime("%Y-%m-%d %H:%M:%S")) for u, t, ts in df.iter_rows()]


def test_reads_rows_with_types_in_file_order(tmp_path):
    df, counts = read_all(write(tmp_path / "log.tsv", HEADER + body(GOOD)))
    assert df.schema == pl.Schema({"user_id": pl.String, "track_id": pl.String, "timestamp": pl.Datetime("us")})
    assert as_tuples(df) == GOOD
    assert counts.rows == 4 and counts.malformed_total == 0
    assert df["timestamp"][2] == datetime(1970, 1, 1, 1)  # the corrupt row is read; the split drops it


def test_bz2_gives_the_same_rows(tmp_path):
    plain, _ = read_all(write(tmp_path / "log.tsv", HEADER + body(GOOD)))
    packed, counts = read_all(write(tmp_path / "log.tsv", HEADER + body(GOOD), compress=True))
    assert packed.equals(plain) and counts.rows == 4


def test_multistream_bz2_like_pbzip2(tmp_path):
    data = bz2.compress((HEADER + body(GOOD[:2])).encode()) + bz2.compress(body(GOOD[2:]).encode())
    path = tmp_path / "log.tsv.bz2"
    path.write_bytes(data)
    df, _ = read_all(path)
    assert as_tuples(df) == GOOD


def test_corrupt_bz2_is_a_clear_error(tmp_path):
    data = bz2.compress((HEADER + body(GOOD * 50)).encode())
    path = tmp_path / "log.tsv.bz2"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ListeningLogError, match=r"log.tsv.bz2.*(truncated|corrupt)"):
        read_all(path)


@pytest.mark.parametrize("block_bytes", [1, 7, 23, 64])
def test_tiny_blocks_split_lines_anywhere(tmp_path, block_bytes):
    rows = [(f"u{i % 7}", f"t{i % 11}", f"2020-01-{1 + i % 28:02d} 00:00:{i % 60:02d}") for i in range(200)]
    path = write(tmp_path / "log.tsv", HEADER + body(rows))
    df, counts = read_all(path, block_bytes=block_bytes)
    assert as_tuples(df) == rows and counts.rows == 200


def test_header_in_another_order_and_crlf_and_no_final_newline(tmp_path):
    text = "timestamp\tuser_id\ttrack_id\r\n2020-02-21 13:45:07\tu1\tt1\r\n2019-05-01 00:00:00\tu1\tt2"
    df, counts = read_all(write(tmp_path / "log.tsv", text))
    assert as_tuples(df) == GOOD[:2] and counts.rows == 2


def test_header_only_gives_no_rows(tmp_path):
    df, counts = read_all(write(tmp_path / "log.tsv", HEADER))
    assert df.height == 0 and counts.rows == 0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"is empty"),
        ("u1\tt1\t2020-02-21 13:45:07\n", r"line 1: expected the header"),
        ("user\ttrack\ttime\n", r"line 1: expected the header"),
    ],
)
def test_bad_header(tmp_path, text, match):
    with pytest.raises(ListeningLogError, match=match):
        read_all(write(tmp_path / "log.tsv", text))


def test_missing_file(tmp_path):
    with pytest.raises(ListeningLogError, match="no listening log"):
        read_all(tmp_path / "nope.tsv")


# Each malformed case: the line, the reason it is counted under, words the error must contain.
MALFORMED = {
    "too_few_fields": ("u9\tt9\n", "columns", "found 2 tab-separated field"),
    "too_many_fields": ("u9\tt9\t2020-02-21 13:45:07\textra\n", "columns", "found 4 tab-separated field"),
    "blank_line": ("\n", "columns", "found 1 tab-separated field"),
    "empty_user": ("\tt9\t2020-02-21 13:45:07\n", "empty_id", "empty user_id"),
    "empty_track": ("u9\t\t2020-02-21 13:45:07\n", "empty_id", "empty track_id"),
    "bad_timestamp": ("u9\tt9\tyesterday\n", "timestamp", "'yesterday' does not match"),
    "impossible_date": ("u9\tt9\t2020-02-30 00:00:00\n", "timestamp", "'2020-02-30 00:00:00'"),
    "trailing_garbage": ("u9\tt9\t2020-02-21 13:45:07+01\n", "timestamp", "does not match"),
    "empty_timestamp": ("u9\tt9\t\n", "timestamp", "timestamp ''"),
    "not_utf8": (b"u9\t\xff\xfe\t2020-02-21 13:45:07\n", "encoding", "not valid UTF-8"),
}


def log_with(bad: str | bytes) -> bytes:
    """Three good rows, the bad one on line 5, one more good row."""
    bad_bytes = bad.encode() if isinstance(bad, str) else bad
    return (HEADER + body(GOOD[:3])).encode() + bad_bytes + body(GOOD[3:]).encode()


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("block_bytes", [1 << 20, 16])
def test_malformed_row_is_an_error_naming_line_and_fix(tmp_path, case, block_bytes):
    line, _, words = MALFORMED[case]
    path = write(tmp_path / "log.tsv", log_with(line))
    with pytest.raises(ListeningLogError) as err:
        read_all(path, block_bytes=block_bytes)
    msg = str(err.value)
    assert "log.tsv, line 5: malformed row" in msg
    assert words in msg
    assert "malformed_rows: skip" in msg


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("block_bytes", [1 << 20, 16])
def test_malformed_row_is_skipped_and_counted(tmp_path, case, block_bytes):
    line, reason, _ = MALFORMED[case]
    path = write(tmp_path / "log.tsv", log_with(line))
    df, counts = read_all(path, malformed_rows="skip", block_bytes=block_bytes)
    assert as_tuples(df) == GOOD
    assert counts.rows == 5
    assert dict(counts.malformed) == {reason: 1}


def test_many_malformed_rows_counted_per_reason_in_bz2(tmp_path):
    lines = [MALFORMED[c][0] for c in sorted(MALFORMED)]
    data = HEADER.encode() + b"".join(x if isinstance(x, bytes) else x.encode() for x in lines) + body(GOOD).encode()
    df, counts = read_all(write(tmp_path / "log.tsv", data, compress=True), malformed_rows="skip")
    assert as_tuples(df) == GOOD
    assert dict(counts.malformed) == {"columns": 3, "empty_id": 2, "timestamp": 4, "encoding": 1}
    assert counts.rows == len(lines) + len(GOOD)


def test_first_malformed_row_of_a_later_block_names_its_own_line(tmp_path):
    rows = body(GOOD * 30)  # lines 2..121
    path = write(tmp_path / "log.tsv", HEADER + rows + "u1\tt1\t2020-13-01 00:00:00\n" + body(GOOD))
    with pytest.raises(ListeningLogError, match="line 122: malformed row"):
        read_all(path, block_bytes=100)


def test_other_timestamp_format(tmp_path):
    path = write(tmp_path / "log.tsv", HEADER + "u1\tt1\t2020-02-21T13:45:07\n")
    df, _ = read_all(path, timestamp_format="%Y-%m-%dT%H:%M:%S")
    assert df["timestamp"].to_list() == [datetime(2020, 2, 21, 13, 45, 7)]
    with pytest.raises(ListeningLogError, match="does not match the format"):
        read_all(path)


def test_quotes_are_part_of_ids_not_csv_quoting(tmp_path):
    df, _ = read_all(write(tmp_path / "log.tsv", HEADER + 'u"1\t"t1"\t2020-02-21 13:45:07\n'))
    assert df.row(0)[:2] == ('u"1', '"t1"')
