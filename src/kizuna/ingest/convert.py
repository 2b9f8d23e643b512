"""Vectorised conversion of import columns, with a reason for every bad value.

Each converter takes an Arrow column (text from CSV and JSON Lines, native
types from Parquet) and returns the typed column plus the positions of bad
values and why they are bad. Work is done with Arrow compute kernels so a
million rows validate in well under a second; Python only runs for the few
rows that need a message.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kizuna.ingest.kinds import Field

#: (row index, reason) pairs for one column.
Bad = list[tuple[int, str]]

TRUE_WORDS = ("true", "t", "yes", "y", "1", "on", "はい", "有", "○")
FALSE_WORDS = ("false", "f", "no", "n", "0", "off", "いいえ", "無", "×")

_INT_RE = r"^[+-]?[0-9]+$"
_MONEY_RE = r"^[+-]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}$"
_DATETIME_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)
_TZ_SUFFIX_RE = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


@dataclass(frozen=True)
class ConvertContext:
    """What converters need to know about the workspace."""

    tz: ZoneInfo
    currency_exponent: int
    max_field_chars: int


def _indices(mask: pa.Array) -> list[int]:
    mask = pc.fill_null(mask, False)
    return pc.indices_nonzero(mask).to_pylist()  # type: ignore[no-any-return]


def _blank_to_null(col: pa.Array) -> pa.Array:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        stripped = pc.utf8_trim_whitespace(col)
        return pc.if_else(pc.equal(stripped, ""), pa.scalar(None, col.type), stripped)
    return col


def _with_nulls(values: pa.Array, ok: pa.Array, target: pa.DataType) -> pa.Array:
    return pc.if_else(ok, values, pa.scalar(None, target))


def _text(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    limit = f.max_chars or ctx.max_field_chars
    lengths = pc.utf8_length(col)
    too_long = pc.greater(lengths, limit)
    bad = [
        (i, f"value has {n:,} characters; the limit for {f.name} is {limit:,}")
        for i, n in zip(
            _indices(too_long),
            pc.filter(lengths, pc.fill_null(too_long, False)).to_pylist(),
            strict=True,
        )
    ]
    nul = pc.fill_null(pc.match_substring(col, "\x00"), False)
    bad += [
        (i, f"{f.name} contains a NUL character, which text cannot hold") for i in _indices(nul)
    ]
    ok = pc.invert(pc.or_(pc.fill_null(too_long, False), nul))
    return _with_nulls(col, ok, pa.string()), bad


def _match(col: pa.Array, pattern: str) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(col, pattern), True)


def _int(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    bad: Bad = []
    if pa.types.is_integer(col.type):
        values = pc.cast(col, pa.int64())
    elif pa.types.is_floating(col.type):
        whole = pc.fill_null(pc.equal(pc.floor(col), col), True)
        bad += [(i, f"{f.name} must be a whole number") for i in _indices(pc.invert(whole))]
        values = pc.cast(pc.if_else(whole, col, None), pa.int64())
    elif (fast := _try_int(col)) is not None:
        values = fast
    else:
        col = col if pa.types.is_string(col.type) else pc.cast(col, pa.string())
        ok = _match(col, _INT_RE)
        bad += [(i, f"{f.name} must be a whole number") for i in _indices(pc.invert(ok))]
        values = pc.cast(pc.if_else(ok, col, None), pa.int64())
    values, range_bad = _check_range(values, f, "")
    return values, bad + range_bad


def _try_int(col: pa.Array) -> pa.Array | None:
    """The column as int64 when every value is a plain integer (the common case).

    One cast instead of several regular expressions; any other spelling
    ("1,980", "¥500", "3.0", "abc") returns None and takes the careful path.
    """
    if not pa.types.is_string(col.type):
        return None
    try:
        return pc.cast(col, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _check_range(values: pa.Array, f: Field, unit: str) -> tuple[pa.Array, Bad]:
    bad: Bad = []
    ok = pa.array(np.ones(len(values), dtype=bool))
    if f.min_value is not None:
        low = pc.fill_null(pc.less(values, f.min_value), False)
        reason = (
            f"{f.name} must not be negative"
            if f.min_value == 0
            else f"{f.name} must be at least {f.min_value}{unit}"
        )
        bad += [(i, reason) for i in _indices(low)]
        ok = pc.and_(ok, pc.invert(low))
    if f.max_value is not None:
        high = pc.fill_null(pc.greater(values, f.max_value), False)
        bad += [(i, f"{f.name} must be at most {f.max_value}{unit}") for i in _indices(high)]
        ok = pc.and_(ok, pc.invert(high))
    return _with_nulls(values, ok, values.type), bad


def _money(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    exp = ctx.currency_exponent
    bad: Bad = []
    if pa.types.is_integer(col.type):
        values = pc.multiply(pc.cast(col, pa.int64()), 10**exp)
    elif (fast := _try_int(col)) is not None:
        values = pc.multiply(fast, 10**exp)
    else:
        if pa.types.is_decimal(col.type) or pa.types.is_floating(col.type):
            col = pc.cast(col, pa.string())
        col = pc.replace_substring_regex(col, r"^[¥￥$]", "")
        ok = _match(col, _MONEY_RE)
        bad += [
            (i, f"{f.name} must be an amount like 1980 or 1,980") for i in _indices(pc.invert(ok))
        ]
        clean = pc.replace_substring(pc.if_else(ok, col, None), ",", "")
        parts = pc.extract_regex(clean, r"^(?P<whole>[+-]?[0-9]+)(?:\.(?P<frac>[0-9]+))?$")
        whole = pc.struct_field(parts, "whole")
        frac = pc.fill_null(pc.struct_field(parts, "frac"), "")
        # Digits past the currency's minor unit must be zeros: 1980.00 yen is fine, 1980.5 is not.
        extra = pc.utf8_slice_codeunits(frac, exp)
        too_precise = pc.fill_null(pc.match_substring_regex(extra, "[1-9]"), False)
        bad += [
            (i, f"{f.name} has more decimals than the currency allows ({exp})")
            for i in _indices(too_precise)
        ]
        minor = (
            pc.utf8_rpad(pc.utf8_slice_codeunits(frac, 0, exp), exp, "0") if exp else pa.nulls(0)
        )
        digits = pc.binary_join_element_wise(whole, minor, "") if exp else whole
        good = pc.and_(ok, pc.invert(too_precise))
        too_big = pc.fill_null(pc.greater(pc.utf8_length(digits), 18), False)
        bad += [(i, f"{f.name} is too large") for i in _indices(pc.and_(good, too_big))]
        good = pc.and_(good, pc.invert(too_big))
        values = pc.cast(pc.if_else(good, digits, None), pa.int64())
    values, range_bad = _check_range(values, f, "")
    return values, bad + range_bad


def _normalise_date_prefix(col: pa.Array) -> pa.Array:
    """2025/3/4 and 2025-3-4 (as spreadsheets write them) become 2025-03-04."""
    col = pc.replace_substring_regex(col, r"^([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})", r"\1-\2-\3")
    col = pc.replace_substring_regex(col, r"^([0-9]{4})-([0-9])-", r"\1-0\2-")
    return pc.replace_substring_regex(col, r"^([0-9]{4}-[0-9]{2})-([0-9])([^0-9]|$)", r"\1-0\2\3")


def _datetime(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    target = pa.timestamp("us", tz="UTC")
    tzname = ctx.tz.key
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = pc.assume_timezone(
                pc.cast(col, pa.timestamp("us")),
                tzname,
                ambiguous="earliest",
                nonexistent="earliest",
            )
        return pc.cast(col, target), []
    if pa.types.is_date(col.type):
        col = pc.cast(col, pa.string())
    col = _normalise_date_prefix(col)
    shaped = _match(col, _DATETIME_RE)
    bad: Bad = [
        (i, f"{f.name} must be a date-time like 2025-03-04T18:22:10+09:00")
        for i in _indices(pc.invert(shaped))
    ]
    aware = pc.and_(shaped, _match(col, _TZ_SUFFIX_RE))
    naive = pc.and_(shaped, pc.invert(aware))
    out = pa.nulls(len(col), target)
    try:
        parsed_aware = pc.cast(pc.if_else(aware, col, None), target)
        parsed_naive = pc.assume_timezone(
            pc.cast(pc.if_else(naive, col, None), pa.timestamp("us")),
            tzname,
            ambiguous="earliest",
            nonexistent="earliest",
        )
        out = pc.coalesce(parsed_aware, pc.cast(parsed_naive, target))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out, slow_bad = _datetime_slow(col, shaped, aware, f, ctx)
        bad += slow_bad
    return out, bad


def _datetime_slow(
    col: pa.Array, shaped: pa.Array, aware: pa.Array, f: Field, ctx: ConvertContext
) -> tuple[pa.Array, Bad]:
    """Per-value parsing, only when a well-shaped value is still impossible (month 13)."""
    from datetime import UTC, datetime

    values: list[datetime | None] = []
    bad: Bad = []
    for i, (text, ok) in enumerate(zip(col.to_pylist(), shaped.to_pylist(), strict=True)):
        if text is None or not ok:
            values.append(None)
            continue
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            bad.append((i, f"{f.name} is not a real date-time (check the month, day and hour)"))
            values.append(None)
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ctx.tz)
        values.append(moment.astimezone(UTC))
    return pa.array(values, pa.timestamp("us", tz="UTC")), bad


def _date(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    if pa.types.is_date(col.type):
        return pc.cast(col, pa.date32()), []
    if pa.types.is_timestamp(col.type):
        return pc.cast(col, pa.date32()), []
    shaped = _match(col, _DATE_RE)
    bad: Bad = [
        (i, f"{f.name} must be a date like 1990-04-01") for i in _indices(pc.invert(shaped))
    ]
    norm = _normalise_date_prefix(pc.if_else(shaped, col, None))
    parsed = pc.strptime(norm, format="%Y-%m-%d", unit="s", error_is_null=True)
    # strptime rolls 30 February over to 2 March; a round trip catches it.
    same = pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), norm)
    impossible = pc.and_(pc.is_valid(norm), pc.invert(pc.fill_null(same, False)))
    parsed = pc.if_else(impossible, pa.scalar(None, parsed.type), parsed)
    bad += [
        (i, f"{f.name} is not a real date (check the month and day)") for i in _indices(impossible)
    ]
    return pc.cast(parsed, pa.date32()), bad


def _bool(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    if pa.types.is_boolean(col.type):
        return col, []
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    low = pc.utf8_lower(col)
    is_true = pc.is_in(low, pa.array(TRUE_WORDS))
    is_false = pc.is_in(low, pa.array(FALSE_WORDS))
    known = pc.or_(is_true, is_false)
    bad = [
        (i, f"{f.name} must be true or false (also yes/no, 1/0)")
        for i in _indices(pc.and_(pc.is_valid(col), pc.invert(known)))
    ]
    return pc.if_else(known, is_true, pa.scalar(None, pa.bool_())), bad


def _enum(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    low = pc.utf8_lower(col)
    known = pc.is_in(low, pa.array(f.choices))
    unknown = pc.and_(pc.is_valid(col), pc.invert(known))
    bad: Bad = []
    if pc.any(unknown).as_py():
        values = pc.filter(col, unknown).to_pylist()
        for i, value in zip(_indices(unknown), values, strict=True):
            close = difflib.get_close_matches(value.lower(), f.choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            bad.append((i, f"{f.name} must be one of {', '.join(f.choices)}{hint}"))
    return pc.if_else(known, low, pa.scalar(None, pa.string())), bad


def _json(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    out: list[str | None] = []
    bad: Bad = []
    for i, text in enumerate(col.to_pylist()):
        if text is None:
            out.append(None)
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.append((i, f"{f.name} must be a JSON object ({exc.msg})"))
            out.append(None)
            continue
        if not isinstance(value, dict):
            bad.append((i, f'{f.name} must be a JSON object like {{"key": "value"}}'))
            out.append(None)
            continue
        out.append(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return pa.array(out, pa.string()), bad


def _ref(col: pa.Array, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    return _text(col, Field(f.name, max_chars=128), ctx)


CONVERTERS: dict[str, Callable[[pa.Array, Field, ConvertContext], tuple[pa.Array, Bad]]] = {
    "text": _text,
    "int": _int,
    "money": _money,
    "datetime": _datetime,
    "date": _date,
    "bool": _bool,
    "enum": _enum,
    "json": _json,
    "ref": _ref,
}


def convert(col: pa.Array | pa.ChunkedArray, f: Field, ctx: ConvertContext) -> tuple[pa.Array, Bad]:
    """Typed column and its bad values; blanks become null, and required blanks are bad."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_null(col.type):
        col = pa.nulls(len(col), pa.string())
    if pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    col = _blank_to_null(col)
    values, bad = CONVERTERS[f.type](col, f, ctx)
    if f.required:
        missing = pc.is_null(col)
        bad += [(i, f"{f.name} is required") for i in _indices(missing)]
    return values, bad
