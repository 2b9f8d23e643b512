"""Turning numpy arrays into the text columns of import files, fast.

A million customers make some 50 million ids and timestamps; formatting them
one Python string at a time would take longer than the whole simulation. Ids,
dates and ISO 8601 instants are all fixed width, so they are built as a
``(rows, width)`` byte matrix with integer arithmetic and handed to Arrow as a
string array without a copy. Free text comes from small corpora and is
gathered with Arrow's ``take``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

DAY = 86_400
WEEK = 7 * DAY
_ZERO = ord("0")

IntArray = np.ndarray


def _digits(out: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    """Write ``values`` as zero-padded decimals into columns ``col .. col+width``."""
    v = values.astype(np.int64, copy=True)
    for k in range(width - 1, -1, -1):
        out[:, col + k] = _ZERO + v % 10
        v //= 10


def fixed_strings(matrix: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow string array over the rows of a byte matrix, without copying."""
    rows, width = matrix.shape
    offsets = np.arange(0, rows * width + 1, width, dtype=np.int32)
    return _string_array(offsets, np.ascontiguousarray(matrix), valid)


def _string_array(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    rows = offsets.size - 1
    buffers = [
        None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little")),
        pa.py_buffer(offsets),
        pa.py_buffer(data),
    ]
    null_count = 0 if valid is None else int(rows - np.count_nonzero(valid))
    return pa.Array.from_buffers(pa.string(), rows, buffers, null_count)


def ids(prefix: str, numbers: np.ndarray, width: int, valid: np.ndarray | None = None) -> pa.Array:
    """``prefix`` + numbers zero-padded to ``width`` digits, e.g. ``C0000042``.

    A number too big for ``width`` keeps all its digits. The form of an id
    depends on its number alone, so a customer has the same id in every file
    whatever else was formatted in the same call.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    if numbers.size == 0 or int(numbers.max()) < 10**width:
        out = np.empty((numbers.size, head.size + width), dtype=np.uint8)
        out[:, : head.size] = head
        _digits(out, head.size, numbers, width)
        return fixed_strings(out, valid)
    digits = width + sum((numbers >= 10**k).astype(np.int64) for k in range(width, 19))
    offsets = np.concatenate([[0], np.cumsum(head.size + digits)]).astype(np.int32)
    data = np.empty(int(offsets[-1]), dtype=np.uint8)
    for d in np.unique(digits):
        rows = np.flatnonzero(digits == d)
        out = np.empty((rows.size, head.size + int(d)), dtype=np.uint8)
        out[:, : head.size] = head
        _digits(out, head.size, numbers[rows], int(d))
        data[offsets[rows][:, None] + np.arange(out.shape[1])] = out
    return _string_array(offsets, data, valid)


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day of days since 1970-01-01 (H. Hinnant's civil_from_days)."""
    z = days.astype(np.int64) + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``YYYY-MM-DD`` from days since the epoch."""
    y, m, d = civil(np.asarray(days))
    out = np.full((y.size, 10), ord("-"), dtype=np.uint8)
    _digits(out, 0, y, 4)
    _digits(out, 5, m, 2)
    _digits(out, 8, d, 2)
    return fixed_strings(out, valid)


class Clock:
    """The workspace timezone: UTC offsets and local days of epoch seconds.

    Every instant of the sample is written with the offset in force at that
    moment (``+09:00`` all year in Asia/Tokyo, two values where there is
    summer time), so a reader need not know the zone to get the instant back.
    """

    def __init__(self, timezone: str, first: date, last: date) -> None:
        self.zone = ZoneInfo(timezone)
        self.name = timezone
        self.start = self.local_midnight(first)
        self.end = self.local_midnight(date.fromordinal(last.toordinal() + 1))
        grid = np.arange(self.start - 2 * DAY, self.end + 2 * DAY, 900, dtype=np.int64)
        offsets = self._pandas_offsets(grid)
        self._constant: int | None = int(offsets[0]) if np.all(offsets == offsets[0]) else None

    def local_midnight(self, day: date) -> int:
        """Epoch seconds at which local ``day`` begins."""
        return int(datetime.combine(day, time.min, tzinfo=self.zone).timestamp())

    def _pandas_offsets(self, seconds: np.ndarray) -> np.ndarray:
        naive = pd.DatetimeIndex(seconds.astype("datetime64[s]")).as_unit("s")
        local = naive.tz_localize("UTC").tz_convert(self.zone).tz_localize(None)
        return (local.asi8 - naive.asi8).astype(np.int64)

    def offsets(self, seconds: np.ndarray) -> np.ndarray:
        """UTC offset in seconds at each instant."""
        if self._constant is not None:
            return np.full(seconds.shape, self._constant, dtype=np.int64)
        return self._pandas_offsets(seconds)

    def local_seconds(self, seconds: np.ndarray) -> np.ndarray:
        """Wall-clock seconds since the epoch (as if the local time were UTC)."""
        return seconds + self.offsets(seconds)

    def from_local(self, local: np.ndarray) -> np.ndarray:
        """Epoch seconds of wall-clock times (the offset at the nearby instant)."""
        return local - self.offsets(local - self.offsets(local))

    def instants(self, seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
        """ISO 8601 with offset, e.g. ``2025-03-04T18:22:10+09:00``."""
        seconds = np.asarray(seconds, dtype=np.int64)
        off = self.offsets(seconds)
        local = seconds + off
        days = np.floor_divide(local, DAY)
        sod = local - days * DAY
        y, m, d = civil(days)
        out = np.empty((seconds.size, 25), dtype=np.uint8)
        out[:, [4, 7]] = ord("-")
        out[:, 10] = ord("T")
        out[:, [13, 16, 22]] = ord(":")
        _digits(out, 0, y, 4)
        _digits(out, 5, m, 2)
        _digits(out, 8, d, 2)
        _digits(out, 11, sod // 3600, 2)
        _digits(out, 14, sod // 60 % 60, 2)
        _digits(out, 17, sod % 60, 2)
        out[:, 19] = np.where(off < 0, ord("-"), ord("+"))
        _digits(out, 20, np.abs(off) // 3600, 2)
        _digits(out, 23, np.abs(off) // 60 % 60, 2)
        return fixed_strings(out, valid)


def pick(choices: Sequence[str], index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``choices[index]`` as an Arrow string array; null where not ``valid``."""
    taken = pc.take(pa.array(list(choices), pa.string()), pa.array(np.asarray(index, np.int64)))
    if valid is None:
        return taken
    return pc.if_else(pa.array(valid), taken, pa.scalar(None, pa.string()))


def by_language(
    corpus: Mapping[str, Sequence[str]],
    index: np.ndarray,
    japanese: np.ndarray,
    valid: np.ndarray | None = None,
) -> pa.Array:
    """The ``index``-th phrase in each row's language (``ja`` or ``en``)."""
    index = np.asarray(index, dtype=np.int64)
    ja = pick(corpus["ja"], index % len(corpus["ja"]))
    en = pick(corpus["en"], index % len(corpus["en"]))
    chosen = pc.if_else(pa.array(np.asarray(japanese, bool)), ja, en)
    if valid is None:
        return chosen
    return pc.if_else(pa.array(valid), chosen, pa.scalar(None, pa.string()))


def join(parts: Sequence[pa.Array], sep: str | pa.Array = "") -> pa.Array:
    """Element-wise concatenation of string arrays (null if any part is null)."""
    return pc.binary_join_element_wise(*parts, sep)


def ints(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An int64 column, null where not ``valid``."""
    values = np.asarray(values, dtype=np.int64)
    return pa.array(values, pa.int64(), mask=None if valid is None else ~valid)


def bools(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    values = np.asarray(values, dtype=bool)
    return pa.array(values, pa.bool_(), mask=None if valid is None else ~valid)


def floats(values: np.ndarray, decimals: int = 6) -> pa.Array:
    """Floats rounded for a readable truth file."""
    return pa.array(np.round(np.asarray(values, dtype=np.float64), decimals), pa.float64())


class CsvOut:
    """One CSV file written a block at a time, with a fixed header.

    ``quote`` is off for files whose every value is known to be free of
    commas, quotes and newlines (ids, numbers, timestamps): they are the big
    ones, and unquoted they are a fifth smaller. Arrow raises rather than
    write a broken row if that promise is ever wrong.
    """

    def __init__(self, path: Path, columns: Sequence[str], quote: bool = True) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.rows = 0
        self._quote = quote
        self._writer: pacsv.CSVWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, columns: dict[str, pa.Array]) -> None:
        """Append rows; ``columns`` must hold exactly this file's columns."""
        if set(columns) != set(self.columns):
            raise ValueError(f"{self.path.name}: columns {sorted(columns)} != {self.columns}")
        arrays = [columns[name] for name in self.columns]
        if self._schema is None:
            self._schema = pa.schema(
                [pa.field(name, arr.type) for name, arr in zip(self.columns, arrays, strict=True)]
            )
            options = pacsv.WriteOptions(quoting_style="needed" if self._quote else "none")
            self._writer = pacsv.CSVWriter(str(self.path), self._schema, write_options=options)
        table = pa.Table.from_arrays(
            [a.cast(f.type) for a, f in zip(arrays, self._schema, strict=True)],
            schema=self._schema,
        )
        if table.num_rows:
            assert self._writer is not None
            self._writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> None:
        """Finish the file; a file that never got rows still gets its header."""
        if self._writer is None:
            quote = '"' if self._quote else ""
            header = ",".join(f"{quote}{c}{quote}" for c in self.columns)
            self.path.write_text(header + "\n", encoding="utf-8")
            return
        self._writer.close()
