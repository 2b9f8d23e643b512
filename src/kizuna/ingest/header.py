"""A file's header matched to a kind's fields, with a hint for every mismatch.

The header is checked before any row is read, so a file with a misspelt or
missing column costs one line of reading and comes back with a message that
names the fix (``--map``, ``--ignore``, ``attr.<name>`` or another kind).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kizuna.ingest.kinds import KINDS, Kind
from kizuna.ingest.problems import Problem
from kizuna.ingest.readers import Source

ATTR_PREFIXES = ("attr.", "attr_", "attributes.")


@dataclass
class Header:
    """How a file's columns become fields: renamed, kept as free attributes, or present."""

    rename: dict[str, str]
    attributes: dict[str, str]
    present: set[str]


def _norm(name: str) -> str:
    return name.strip().lower()


def plan_header(
    kind: Kind, source: Source, mapping: Mapping[str, str], ignore: Sequence[str]
) -> tuple[Header | None, list[Problem]]:
    """Match file columns to fields; report missing, unknown and duplicated columns."""
    problems: list[Problem] = []
    fields = kind.field_map
    by_norm = {_norm(c): c for c in source.columns}
    rename: dict[str, str] = {}
    attributes: dict[str, str] = {}
    claimed: set[str] = set()

    def problem(line: int | None, column: str | None, message: str) -> None:
        problems.append(Problem(str(source.path), line, column, message))

    for fname, column in mapping.items():
        if fname not in fields:
            problem(
                None,
                None,
                f"--map names unknown field {fname!r}; {kind.name} fields are {', '.join(fields)}",
            )
            continue
        actual = by_norm.get(_norm(column))
        if actual is None:
            problem(
                1,
                column,
                f"--map {fname}={column}: the file has no column {column!r}; "
                f"its columns are {', '.join(source.columns)}",
            )
            continue
        rename[actual] = fname
        claimed.add(actual)
    ignored = {_norm(c) for c in ignore}
    seen: dict[str, int] = {}
    for column in source.columns:
        seen[_norm(column)] = seen.get(_norm(column), 0) + 1
    for name, count in seen.items():
        if count > 1:
            problem(
                1,
                name,
                f"column {name!r} appears {count} times in the header; "
                "each column must appear once",
            )
    for column in source.columns:
        if column in claimed or _norm(column) in ignored:
            continue
        low = _norm(column)
        if low in fields and low not in rename.values():
            rename[column] = low
            continue
        if kind.attributes_column and low.startswith(ATTR_PREFIXES):
            attributes[column] = column.split(".", 1)[1] if "." in column else column[5:]
            continue
        close = difflib.get_close_matches(low, list(fields), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        extra = (
            " or name it attr.<name> to keep it as a free attribute"
            if kind.attributes_column
            else ""
        )
        problem(
            1,
            column,
            f"unknown column {column!r} for {kind.name}; {hint}map it with "
            f"--map FIELD={column}, drop it with --ignore {column!r}{extra}",
        )
    present = set(rename.values())
    missing = [f for f in _required(kind) if f not in present]
    if missing:
        problem(
            1,
            None,
            f"missing required column(s) {', '.join(missing)}; the file's columns are "
            f"{', '.join(source.columns) or '(none)'}; if one of them holds this data, pass "
            f"--map {missing[0]}=<column>",
        )
    if problems:
        guess = _guess_kind(source.columns)
        if guess and guess != kind.name:
            problem(
                1,
                None,
                f"the columns look like a {guess} file; import it as "
                f"`kizuna import {guess} {source.path.name}`",
            )
        return None, problems
    return Header(rename, attributes, present), []


def _guess_kind(columns: Sequence[str]) -> str | None:
    """The kind whose fields best match a header, to catch a file given to the wrong kind."""
    names = {_norm(c) for c in columns}
    best, score = None, 0.0
    for kind in KINDS.values():
        fields = set(kind.field_map)
        overlap = len(names & fields) / max(len(names), 1)
        if overlap > score and all(r in names for r in _required(kind)):
            best, score = kind.name, overlap
    return best if score >= 0.5 else None


def _required(kind: Kind) -> list[str]:
    """The fields a file must have: a key the importer derives need not be given."""
    return [f for f in kind.required if not (kind.derive_key and f in kind.key)]
