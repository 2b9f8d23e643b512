"""Reading import files (CSV, Parquet, JSON Lines) as Arrow batches.

Readers do no validation of values; they find the encoding, the header and
the rows, and they know how to turn a record's position back into the line a
person sees in their editor, which is what every problem report needs.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kizuna.ingest.problems import Problem

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
_CHUNK = 4 << 20
_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with BOM)",
    "cp932": "Shift_JIS (CP932)",
    "shift_jis": "Shift_JIS",
    "euc-jp": "EUC-JP",
}


class FileUnreadable(Exception):
    """The file as a whole cannot be read; carries the one problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def file_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in ("csv", "parquet", "jsonl"):
            raise FileUnreadable(
                Problem(str(path), None, None, f"unknown format {fmt!r}; use csv, parquet or jsonl")
            )
        return fmt
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    raise FileUnreadable(
        Problem(
            str(path),
            None,
            None,
            f"cannot tell the format from the name {path.name!r}; name it .csv, .parquet or "
            ".jsonl, or pass --format",
        )
    )


def _line_at(path: Path, offset: int) -> int:
    """1-based line number of byte ``offset``."""
    line = 1
    with path.open("rb") as fh:
        remaining = offset
        while remaining > 0:
            chunk = fh.read(min(_CHUNK, remaining))
            if not chunk:
                break
            line += chunk.count(b"\n")
            remaining -= len(chunk)
    return line


def _first_bad_offset(path: Path, encoding: str) -> int | None:
    """Byte offset of the first byte that does not decode, or None if all do."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(_CHUNK)
            final = not chunk
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                pending = len(decoder.getstate()[0]) if hasattr(decoder, "getstate") else 0
                return max(0, offset - pending + exc.start)
            if final:
                return None
            offset += len(chunk)


def detect_encoding(path: Path, requested: str | None) -> tuple[str, str | None]:
    """The encoding to read ``path`` with, and a note for the report if it was guessed.

    Japanese tools (Excel, many POS and EC back offices) still export
    Shift_JIS; we accept it without a flag but say so, and a file that is
    neither is refused with the line of the first bad byte.
    """
    with path.open("rb") as fh:
        head = fh.read(3)
    if requested:
        try:
            codecs.lookup(requested)
        except LookupError:
            raise FileUnreadable(
                Problem(
                    str(path), None, None, f"unknown encoding {requested!r}; try utf-8 or cp932"
                )
            ) from None
        bad = _first_bad_offset(path, requested)
        if bad is not None:
            other = "cp932" if requested.lower().replace("_", "-") in ("utf-8", "utf8") else "utf-8"
            hint = ""
            if _first_bad_offset(path, other) is None:
                hint = f"; the file reads cleanly as {_ENCODING_NAMES.get(other, other)}: pass --encoding {other}"
            raise FileUnreadable(
                Problem(
                    str(path),
                    _line_at(path, bad),
                    None,
                    f"bytes that are not valid {requested} (at byte {bad}){hint}",
                )
            )
        return requested, None
    enc = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    bad = _first_bad_offset(path, enc)
    if bad is None:
        return enc, None
    if _first_bad_offset(path, "cp932") is None:
        return "cp932", "read as Shift_JIS (CP932) because it is not valid UTF-8"
    raise FileUnreadable(
        Problem(
            str(path),
            _line_at(path, bad),
            None,
            f"the file is neither UTF-8 nor Shift_JIS (first bad byte at offset {bad}); "
            "save it as UTF-8 (in Excel: CSV UTF-8) or pass --encoding",
        )
    )


@dataclass
class Batch:
    """A slice of a file's records, as strings or native Arrow types."""

    table: pa.Table
    #: Index of the first record in the file (0-based, among well-formed records).
    first_record: int
    #: Explicit line numbers when the reader knows them (JSON Lines).
    lines: list[int] | None = None


@dataclass
class Source:
    """One file to import, opened far enough to know its columns."""

    path: Path
    format: str
    columns: list[str]
    encoding: str | None = None
    delimiter: str = ","
    unit: str = "line"
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    records: int = 0
    _line_map: list[int] | None = None

    # ---- opening -------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path,
        fmt: str | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> Source:
        if not path.exists():
            raise FileUnreadable(Problem(str(path), None, None, "file not found"))
        if path.is_dir():
            raise FileUnreadable(
                Problem(
                    str(path), None, None, "is a folder; use `kizuna import-folder` for folders"
                )
            )
        kind = file_format(path, fmt)
        if path.stat().st_size == 0:
            raise FileUnreadable(
                Problem(
                    str(path), None, None, "the file is empty; expected a header row and data rows"
                )
            )
        if kind == "parquet":
            return cls._open_parquet(path)
        with path.open("rb") as fh:
            head = fh.read(65536)
        if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise FileUnreadable(
                Problem(
                    str(path),
                    _line_at(path, head.index(b"\x00")),
                    None,
                    f"this is not a text file (binary data); a {kind.upper()} file must be text"
                    + (
                        "; Parquet files must be named .parquet" if head.startswith(b"PAR1") else ""
                    ),
                )
            )
        if kind == "jsonl":
            enc, note = detect_encoding(path, encoding)
            src = cls(path, "jsonl", [], enc)
            if note:
                src.notes.append(f"{path.name}: {note}")
            return src
        return cls._open_csv(path, encoding, delimiter)

    @classmethod
    def _open_parquet(cls, path: Path) -> Source:
        try:
            meta = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FileUnreadable(
                Problem(str(path), None, None, f"not a readable Parquet file ({exc})")
            ) from None
        return cls(
            path,
            "parquet",
            list(meta.schema_arrow.names),
            unit="row",
            records=meta.metadata.num_rows,
        )

    @classmethod
    def _open_csv(cls, path: Path, encoding: str | None, delimiter: str | None) -> Source:
        enc, note = detect_encoding(path, encoding)
        with path.open("r", encoding=enc, newline="") as fh:
            sample = fh.read(65536)
        if not sample.strip():
            raise FileUnreadable(
                Problem(str(path), None, None, "the file has no content; expected a header row")
            )
        delim = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
        header = next(csv.reader(io.StringIO(sample), delimiter=delim))
        columns = [c.strip().lstrip("\ufeff") for c in header]
        src = cls(path, "csv", columns, enc, delimiter=delim)
        if note:
            src.notes.append(f"{path.name}: {note}")
        return src

    # ---- reading -------------------------------------------------------------
    def batches(self, batch_rows: int) -> Iterator[Batch]:
        if self.format == "parquet":
            yield from self._parquet_batches(batch_rows)
        elif self.format == "jsonl":
            yield from self._jsonl_batches(batch_rows)
        else:
            yield from self._csv_batches(batch_rows)

    def _parquet_batches(self, batch_rows: int) -> Iterator[Batch]:
        first = 0
        for rb in pq.ParquetFile(self.path).iter_batches(batch_size=batch_rows):
            yield Batch(pa.Table.from_batches([rb]), first)
            first += rb.num_rows

    def _csv_batches(self, batch_rows: int) -> Iterator[Batch]:
        bad_rows: list[tuple[int | None, int, str]] = []

        def on_invalid(row: Any) -> str:
            bad_rows.append((row.number, row.actual_columns, row.text))
            return "skip"

        block = 16 << 20
        while True:
            try:
                reader = pacsv.open_csv(
                    self.path,
                    read_options=pacsv.ReadOptions(
                        encoding=self.encoding or "utf-8",
                        block_size=block,
                        column_names=[f"c{i}" for i in range(len(self.columns))],
                        skip_rows=1,
                    ),
                    parse_options=pacsv.ParseOptions(
                        delimiter=self.delimiter,
                        newlines_in_values=True,
                        invalid_row_handler=on_invalid,
                    ),
                    convert_options=pacsv.ConvertOptions(
                        column_types={f"c{i}": pa.string() for i in range(len(self.columns))},
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
                break
            except pa.ArrowInvalid as exc:
                if "straddling" in str(exc) and block < (1 << 30):
                    block *= 4
                    continue
                raise FileUnreadable(
                    Problem(str(self.path), None, None, f"cannot parse as CSV: {exc}")
                ) from None
        first = 0
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        names = list(self.columns)
        try:
            for rb in reader:
                pending.append(rb)
                pending_rows += rb.num_rows
                if pending_rows >= batch_rows:
                    table = pa.Table.from_batches(pending).rename_columns(names)
                    yield Batch(table, first)
                    first += table.num_rows
                    pending, pending_rows = [], 0
        except pa.ArrowInvalid as exc:
            if "straddling" in str(exc) or "block" in str(exc):
                raise FileUnreadable(
                    Problem(
                        str(self.path),
                        None,
                        None,
                        f"a single value is too large to read ({exc}); values over 256 MB are refused",
                    )
                ) from None
            raise FileUnreadable(
                Problem(str(self.path), None, None, f"cannot parse as CSV: {exc}")
            ) from None
        if pending:
            table = pa.Table.from_batches(pending).rename_columns(names)
            yield Batch(table, first)
            first += table.num_rows
        self.records = first
        for _number, actual, text in bad_rows:
            self.problems.append(
                Problem(
                    str(self.path),
                    self._line_of_text(text),
                    None,
                    f"has {actual} fields but the header has {len(self.columns)}; "
                    "check for an unquoted comma or a missing value",
                    value=text,
                )
            )

    def _jsonl_batches(self, batch_rows: int) -> Iterator[Batch]:
        rows: list[dict[str, Any]] = []
        lines: list[int] = []
        first = 0
        seen: dict[str, None] = {c: None for c in self.columns}
        with self.path.open("r", encoding=self.encoding or "utf-8") as fh:
            for number, raw in enumerate(fh, start=1):
                text = raw.strip()
                if not text:
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    self.problems.append(
                        Problem(
                            str(self.path), number, None, f"not valid JSON: {exc.msg}", value=text
                        )
                    )
                    continue
                if not isinstance(obj, dict):
                    self.problems.append(
                        Problem(
                            str(self.path),
                            number,
                            None,
                            'each line must be a JSON object like {"customer_id": ...}',
                            value=text,
                        )
                    )
                    continue
                for key in obj:
                    if key not in seen:
                        seen[key] = None
                rows.append(obj)
                lines.append(number)
                if len(rows) >= batch_rows:
                    yield self._jsonl_table(rows, lines, first, list(seen))
                    first += len(rows)
                    rows, lines = [], []
        if rows:
            yield self._jsonl_table(rows, lines, first, list(seen))
            first += len(rows)
        self.records = first
        if first == 0 and not self.problems:
            self.problems.append(
                Problem(
                    str(self.path),
                    None,
                    None,
                    "the file has no records; expected one JSON object per line",
                )
            )

    def _jsonl_table(
        self, rows: list[dict[str, Any]], lines: list[int], first: int, keys: list[str]
    ) -> Batch:
        self.columns = keys
        columns: dict[str, list[str | None]] = {k: [] for k in keys}
        for row in rows:
            for key in keys:
                value = row.get(key)
                if value is None:
                    columns[key].append(None)
                elif isinstance(value, bool):
                    columns[key].append("true" if value else "false")
                elif isinstance(value, (dict, list)):
                    columns[key].append(json.dumps(value, ensure_ascii=False))
                else:
                    columns[key].append(str(value))
        table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
        return Batch(table, first, lines)

    # ---- positions -------------------------------------------------------------
    def line_of(self, batch: Batch, index: int) -> int:
        """The line (or Parquet row) a person should look at for a batch row."""
        if batch.lines is not None:
            return batch.lines[index]
        record = batch.first_record + index
        if self.format == "parquet":
            return record + 1
        return self._record_lines()[record]

    def _record_lines(self) -> list[int]:
        """Starting line of each well-formed record, found by a second, exact pass.

        Only run when a problem needs a line number: most files have none, and
        for files without quoted line breaks the answer is simply index + 2.
        """
        if self._line_map is None:
            mapping: list[int] = []
            csv.field_size_limit(1 << 30)  # the 10 MB comment must be countable too
            with self.path.open("r", encoding=self.encoding or "utf-8", newline="") as fh:
                reader = csv.reader(fh, delimiter=self.delimiter)
                next(reader, None)
                start = reader.line_num + 1
                for record in reader:
                    if len(record) == len(self.columns):
                        mapping.append(start)
                    start = reader.line_num + 1
            self._line_map = mapping
        return self._line_map

    def _line_of_text(self, text: str) -> int | None:
        first_line = text.split("\n", 1)[0]
        with self.path.open("r", encoding=self.encoding or "utf-8", newline="") as fh:
            for number, line in enumerate(fh, start=1):
                if line.rstrip("\r\n") == first_line:
                    return number
        return None
