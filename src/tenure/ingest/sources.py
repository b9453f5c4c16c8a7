"""Reading files row by row in constant memory: CSV (any delimiter), JSON Lines and Parquet.

A source knows its columns before the first row is read, reports how far through the file it is, and
refuses a file it cannot read (empty, no header, not text, unknown format) with :class:`SourceError`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

RawRow = dict[str, Any]
BATCH_ROWS = 10_000
END = -1  # a batch's position once the whole file has been read
SAMPLE_BYTES = 64 * 1024
FIELD_LIMIT = 64 * 1024 * 1024
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_DELIMITERS = (",", ";", "\t", "|")


class SourceError(ValueError):
    """The file as a whole cannot be read; nothing from it is imported."""


class FastReaderGaveUp(Exception):
    """Arrow's CSV reader met something it reads differently (or not at all): read the file again
    with Python's csv module, which is the reference for row numbers and error messages."""


@dataclass
class Batch:
    """Up to BATCH_ROWS consecutive rows, readable as row dicts or as Arrow columns.

    ``numbers`` are the 1-based numbers of the readable rows; ``broken`` the rows that could not
    even be split into cells, with the reason.
    """

    columns: list[str]
    numbers: list[int] = field(default_factory=list)
    broken: list[tuple[int, str]] = field(default_factory=list)
    cells: list[list[str]] | None = None
    records: list[RawRow] | None = None
    arrow: pa.RecordBatch | None = None
    position: int = 0  # bytes read when this batch was complete (END: all), for progress

    def __len__(self) -> int:
        return len(self.numbers) + len(self.broken)

    def note_keys(self, row: RawRow) -> None:
        """Add keys first seen in this row to the batch's columns (JSON Lines rows vary)."""
        if len(row) > len(self.columns) or not row.keys() <= set(self.columns):
            self.columns = self.columns + [k for k in row if k not in self.columns]

    def rows(self) -> list[RawRow]:
        """One dict per readable row (column name -> raw value)."""
        if self.records is not None:
            return self.records
        if self.arrow is not None:
            return list(self.arrow.to_pylist())
        names = self.columns
        return [dict(zip(names, cells, strict=False)) for cells in self.cells or []]

    def column_arrays(self) -> dict[str, pa.Array]:
        """One Arrow array per column (raises pa.ArrowInvalid on columns of mixed JSON types)."""
        if self.arrow is not None:
            return {name: self.arrow.column(name) for name in self.arrow.schema.names}
        if self.cells is not None:
            width = len(self.columns)
            padded = (
                row if len(row) == width else row + [""] * (width - len(row)) for row in self.cells
            )
            transposed = list(zip(*padded, strict=True)) or [()] * width
            return {
                name: pa.array(values, pa.string())
                for name, values in zip(self.columns, transposed, strict=True)
            }
        rows = self.records or []
        return {name: _json_column([row.get(name) for row in rows]) for name in self.columns}


@dataclass
class Source:
    """An open file: its columns, its rows in batches, and how far reading has got."""

    path: Path
    format: str
    columns: list[str]
    size: int
    encoding: str | None = None
    delimiter: str | None = None
    warnings: list[str] = field(default_factory=list)
    _rows: Iterator[Batch] | None = None
    _close: Any = None

    def close(self) -> None:
        """Release the file (also when it was refused before any row was read)."""
        if self._close is not None:
            self._close()

    def batches(self) -> Iterator[Batch]:
        """The file's rows, in batches."""
        assert self._rows is not None
        return self._rows


def open_source(
    path: Path,
    format: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    fast: bool = True,
) -> Source:
    """Open ``path`` for reading; the format comes from the suffix unless given.

    ``fast`` lets a plain UTF-8 CSV be read by Arrow's multi-threaded reader; it raises
    :class:`FastReaderGaveUp` on anything unusual, and the caller reads again with ``fast=False``.
    """
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder, not a file")
    size = path.stat().st_size
    if size == 0:
        raise SourceError(f"{path}: the file is empty")
    kind = format or _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SourceError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; use .csv, .jsonl or "
            ".parquet, or set format: in a mapping file"
        )
    if kind == "csv":
        return _open_csv(path, size, delimiter, encoding, fast)
    opener = {"jsonl": _open_jsonl, "parquet": _open_parquet}[kind]
    return opener(path, size, delimiter, encoding)


def _detect_encoding(sample: bytes, path: Path) -> tuple[str, list[str]]:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", []
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", []
    if b"\x00" in sample:
        raise SourceError(f"{path}: not a text file (it contains NUL bytes); is it compressed?")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8", []
    except UnicodeDecodeError as err:
        position = err.start
    text = sample.decode("cp1252", errors="replace")
    if "\ufffd" in text:
        raise SourceError(f"{path}: not UTF-8 text (undecodable byte at offset {position})")
    return "cp1252", [
        f"not UTF-8 (first bad byte at offset {position}): read as Windows-1252/Latin-1; "
        "set encoding: in a mapping file if that is wrong"
    ]


def _detect_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _open_csv(
    path: Path, size: int, delimiter: str | None, encoding: str | None, fast: bool = False
) -> Source:
    raw = path.open("rb")
    sample = raw.read(SAMPLE_BYTES)
    raw.seek(0)
    warnings: list[str] = []
    if encoding is None:
        try:
            encoding, warnings = _detect_encoding(sample, path)
        except SourceError:
            raw.close()
            raise
    text = io.TextIOWrapper(raw, encoding=encoding, newline="", errors="strict")
    try:
        header_line, skipped = _first_line(text, path)
    except SourceError:
        text.close()
        raise
    used = delimiter or _detect_delimiter(header_line)
    columns = _header(header_line, used, path)
    source = Source(path, "csv", columns, size, encoding, used, warnings)
    if fast and encoding == "utf-8" and skipped == 0 and _arrow_can_split(used, columns):
        text.close()
        return _arrow_csv(source)
    source._rows = _csv_batches(text, columns, used, path, raw.tell)
    source._close = text.close
    return source


def _arrow_can_split(delimiter: str, columns: list[str]) -> bool:
    """Where Arrow's reader provably splits rows as Python's does (else the reference reads).

    An ASCII delimiter; more than one column (Python skips a blank line of a one-column file,
    Arrow keeps it as a row).
    """
    return (
        delimiter.isascii()
        and delimiter not in ('"', "\r", "\n", "whitespace")
        and len(columns) > 1
    )


def _arrow_csv(source: Source) -> Source:
    """Read with Arrow: every cell as text, exactly as Python's csv module would give it."""
    handle = source.path.open("rb")
    try:
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(
                column_names=source.columns, skip_rows=1, block_size=1 << 20
            ),
            parse_options=pacsv.ParseOptions(delimiter=source.delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(source.columns, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError, TypeError) as err:
        handle.close()
        raise FastReaderGaveUp(str(err)) from None
    source._rows = _arrow_csv_batches(reader, source.columns, handle)
    source._close = handle.close
    return source


def _has_carriage_return(record_batch: pa.RecordBatch) -> bool:
    return any(pc.any(pc.match_substring(column, "\r")).as_py() for column in record_batch.columns)


def _arrow_csv_batches(reader: Any, columns: list[str], handle: BinaryIO) -> Iterator[Batch]:
    number = 0
    try:
        while True:
            try:
                record_batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowException as err:
                raise FastReaderGaveUp(str(err)) from None
            size = record_batch.num_rows
            if _has_carriage_return(record_batch):
                # apache/arrow#51368: a quoted CRLF split by a block boundary loses its LF
                raise FastReaderGaveUp("a value holds a carriage return")
            if size:
                numbers = list(range(number + 1, number + size + 1))
                yield Batch(columns, numbers=numbers, arrow=record_batch, position=handle.tell())
                number += size
    finally:
        handle.close()


def _first_line(text: io.TextIOWrapper, path: Path) -> tuple[str, int]:
    """The header line, and how many blank lines came before it."""
    try:
        for skipped, line in enumerate(text):
            if line.strip():
                return line.rstrip("\r\n"), skipped
    except UnicodeDecodeError as err:
        raise SourceError(f"{path}: cannot decode the header ({err.reason})") from None
    raise SourceError(f"{path}: no header line (the file holds only blank lines)")


def _header(line: str, delimiter: str, path: Path) -> list[str]:
    cells = (
        line.split() if delimiter == "whitespace" else next(csv.reader([line], delimiter=delimiter))
    )
    columns = [cell.strip() or f"column_{i + 1}" for i, cell in enumerate(cells)]
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise SourceError(f"{path}: the header names column {column!r} twice")
        seen.add(column)
    return columns


def _csv_batches(
    text: io.TextIOWrapper, columns: list[str], delimiter: str, path: Path, tell: Callable[[], int]
) -> Iterator[Batch]:
    csv.field_size_limit(FIELD_LIMIT)
    if delimiter == "whitespace":
        cells_iter: Iterator[list[str]] = (line.split() for line in text)
    else:
        cells_iter = csv.reader(text, delimiter=delimiter)
    width = len(columns)
    batch = Batch(columns, cells=[])
    number = 0
    try:
        for cells in cells_iter:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            number += 1
            if len(cells) > width:
                reason = f"has {len(cells)} cells but the header has {width} columns"
                batch.broken.append((number, reason))
            else:
                batch.numbers.append(number)
                batch.cells.append(cells)  # type: ignore[union-attr]
            if number % BATCH_ROWS == 0:
                batch.position = tell()
                yield batch
                batch = Batch(columns, cells=[])
    except UnicodeDecodeError as err:
        raise SourceError(
            f"{path}: cannot decode the text after row {number} ({err.reason}); "
            "set encoding: in a mapping file"
        ) from None
    except csv.Error as err:
        raise SourceError(f"{path}: row {number + 1} cannot be read as CSV ({err})") from None
    finally:
        text.close()
    if len(batch):
        batch.position = END
        yield batch


def _open_jsonl(path: Path, size: int, delimiter: str | None, encoding: str | None) -> Source:
    raw = path.open("rb")
    sample = raw.read(SAMPLE_BYTES)
    raw.seek(0)
    warnings: list[str] = []
    if encoding is None:
        try:
            encoding, warnings = _detect_encoding(sample, path)
        except SourceError:
            raw.close()
            raise
    columns = _jsonl_columns(sample.decode(encoding, errors="replace"))
    if not columns:
        raw.close()
        raise SourceError(f"{path}: no JSON object found in the first lines")
    text = io.TextIOWrapper(raw, encoding=encoding, errors="strict")
    source = Source(path, "jsonl", columns, size, encoding, None, warnings)
    source._rows = _jsonl_batches(text, path, columns, raw.tell)
    source._close = text.close
    return source


def _jsonl_columns(sample: str) -> list[str]:
    columns: dict[str, None] = {}
    for line in sample.splitlines()[:1000]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            columns.update(dict.fromkeys(value))
    return list(columns)


def _jsonl_batches(
    text: io.TextIOWrapper, path: Path, columns: list[str], tell: Callable[[], int]
) -> Iterator[Batch]:
    batch = Batch(list(columns), records=[])
    number = 0
    try:
        for line in text:
            if not line.strip():
                continue
            number += 1
            row = _json_row(line)
            if isinstance(row, str):
                batch.broken.append((number, row))
            else:
                batch.numbers.append(number)
                batch.records.append(row)  # type: ignore[union-attr]
                batch.note_keys(row)
            if number % BATCH_ROWS == 0:
                batch.position = tell()
                yield batch
                batch = Batch(list(columns), records=[])
    except UnicodeDecodeError as err:
        raise SourceError(f"{path}: cannot decode line {number + 1} ({err.reason})") from None
    finally:
        text.close()
    if len(batch):
        batch.position = END
        yield batch


def _json_column(values: list[Any]) -> pa.Array:
    """One JSON Lines column as Arrow: objects and arrays as canonical JSON text; a column mixing
    kinds of values (numbers and text, say) is refused, so that the row path reads it instead."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {dict, list}:
        texts = [
            None
            if v is None
            else json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            for v in values
        ]
        return pa.array(texts, pa.string())
    if len(kinds) > 1:
        raise pa.ArrowInvalid(f"mixed kinds of values: {sorted(k.__name__ for k in kinds)}")
    return pa.array(values)


def _json_row(line: str) -> RawRow | str:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        return f"not valid JSON: {err.msg} at character {err.pos}"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    return value


def _open_parquet(path: Path, size: int, delimiter: str | None, encoding: str | None) -> Source:
    handle: BinaryIO = path.open("rb")
    try:
        parquet = pq.ParquetFile(handle)
    except Exception as err:  # pyarrow raises ArrowInvalid and friends
        handle.close()
        raise SourceError(f"{path}: not a readable Parquet file ({err})") from None
    columns = list(parquet.schema_arrow.names)
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        handle.close()
        raise SourceError(f"{path}: the file names column {twice[0]!r} twice")
    source = Source(path, "parquet", columns, size)
    source._rows = _parquet_batches(parquet, handle, columns)
    source._close = handle.close
    return source


def _parquet_batches(parquet: Any, handle: BinaryIO, columns: list[str]) -> Iterator[Batch]:
    number = 0
    try:
        for record_batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            size = record_batch.num_rows
            numbers = list(range(number + 1, number + size + 1))
            yield Batch(columns, numbers=numbers, arrow=record_batch, position=handle.tell())
            number += size
    finally:
        handle.close()
