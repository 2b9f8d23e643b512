"""Problems found by an import, and the report that lists every one of them."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One bad value or row: where it is, what is wrong and how to fix it."""

    file: str
    line: int | None
    column: str | None
    reason: str
    value: str | None = None
    #: "line" for text files, "row" for Parquet (which has no lines).
    unit: str = "line"

    def where(self) -> str:
        parts = [Path(self.file).name]
        if self.line is not None:
            parts.append(f"{self.unit} {self.line}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    @property
    def message(self) -> Message | None:
        """The reason as a catalogue key and its fields (for the dashboard in Japanese)."""
        return message_of(self.reason)

    def __str__(self) -> str:
        shown = ""
        if self.value is not None:
            text = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            shown = f" (got {text!r})"
        return f"{self.where()}: {self.reason}{shown}"


@dataclass(frozen=True)
class Message:
    """A problem's reason as a message-catalogue key (``web/i18n``) and its fields."""

    key: str
    fields: dict[str, str]


#: The importer's reasons, each as a pattern over its English text and the
#: catalogue key that says the same in every language. The English text stays
#: the source of truth (the CLI, ``report.csv`` and the API show it); a reason
#: no pattern matches is shown in English everywhere.
_FIELD = r"(?P<field>[A-Za-z0-9_.]+)"
MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.S), f"pages.import_{key}")
    for pattern, key in (
        (rf"{_FIELD} is required", "required"),
        (rf"{_FIELD} must be a whole number", "whole_number"),
        (rf"{_FIELD} must not be negative", "not_negative"),
        (rf"{_FIELD} must be at least (?P<min>.+)", "at_least"),
        (rf"{_FIELD} must be at most (?P<max>.+)", "at_most"),
        (rf"{_FIELD} must be an amount like 1980 or 1,980", "amount"),
        (rf"{_FIELD} has more decimals than the currency allows \((?P<exp>\d+)\)", "too_precise"),
        (rf"{_FIELD} is too large", "too_large"),
        (rf"{_FIELD} must be a date-time like 2025-03-04T18:22:10\+09:00", "datetime"),
        (rf"{_FIELD} is not a real date-time \(check the month, day and hour\)", "unreal_datetime"),
        (rf"{_FIELD} must be a date like 1990-04-01", "date"),
        (rf"{_FIELD} is not a real date \(check the month and day\)", "unreal_date"),
        (rf"{_FIELD} must be true or false \(also yes/no, 1/0\)", "bool"),
        (rf"{_FIELD} must be one of (?P<choices>.+?); did you mean (?P<hint>'[^']*')\?", "choice_hint"),
        (rf"{_FIELD} must be one of (?P<choices>.+)", "choice"),
        (rf"{_FIELD} contains a NUL character, which text cannot hold", "nul"),
        (r"no (?P<what>.+?) with id (?P<id>.+?); import (?P<target>\S+) first or include them "
         r"in this import", "no_ref"),
        (r"a (?P<kind>\w+) score must be between (?P<low>-?\d+) and (?P<high>-?\d+)", "score_range"),
        (r"duplicate (?P<label>.+?) (?P<value>'.*'): the same record is also in (?P<file>.+) "
         r"\(record (?P<record>\d+)\); each record may appear once per import", "duplicate_in"),
        (r"duplicate (?P<label>.+?) (?P<value>'.*'): the same record is also record "
         r"(?P<record>\d+); each record may appear once per import", "duplicate"),
        (r"file not found", "file_not_found"),
        (r"the file is empty; expected a header row and data rows", "file_empty"),
        (r"the file has a header but no data rows", "no_rows"),
        (r"missing required column\(s\) (?P<columns>.+?); the file's columns are (?P<found>.*?); "
         r"if one of them holds this data, pass --map (?P<first>\S+)=<column>", "missing_columns"),
        (r"unknown column (?P<column>'.*?') for (?P<kind>\w+); did you mean (?P<hint>'.*?')\? "
         r"map it with .*", "unknown_column_hint"),
        (r"unknown column (?P<column>'.*?') for (?P<kind>\w+); map it with .*", "unknown_column"),
        (r"has (?P<actual>\d+) fields but the header has (?P<expected>\d+); .*", "field_count"),
        (r"not valid JSON: (?P<error>.+)", "json"),
        (r"the file is neither UTF-8 nor Shift_JIS \(first bad byte at offset (?P<offset>\d+)\); .*",
         "encoding"),
    )
)  # fmt: skip


def message_of(reason: str) -> Message | None:
    """The catalogue key and fields of an importer reason, or None for one without a key."""
    for pattern, key in MESSAGES:
        found = pattern.fullmatch(reason)
        if found:
            return Message(key, {k: v for k, v in found.groupdict().items() if v is not None})
    return None


@dataclass
class KindStats:
    """What one kind's files did to the database."""

    kind: str
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_valid: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0


@dataclass
class ImportReport:
    """The outcome of one import: per-kind counts and every problem found."""

    stats: dict[str, KindStats] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    committed: bool = False
    skip_bad: bool = False
    notes: list[str] = field(default_factory=list)
    report_file: Path | None = None
    rejects_files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_rows(self) -> int:
        return sum(s.rejected for s in self.stats.values())

    def summary_line(self) -> str:
        if self.committed:
            done = sum(s.inserted for s in self.stats.values())
            upd = sum(s.updated for s in self.stats.values())
            same = sum(s.unchanged for s in self.stats.values())
            text = f"imported: {done:,} new, {upd:,} updated, {same:,} unchanged"
            if self.bad_rows:
                text += f"; {self.bad_rows:,} bad row(s) skipped"
            return text
        rows = f" in {self.bad_rows:,} row(s)" if self.bad_rows else ""
        hint = " or pass --skip-bad to import only the good rows" if self.bad_rows else ""
        return f"nothing imported: {len(self.problems):,} problem(s){rows}; fix them and import again{hint}"

    def write(self, path: Path) -> Path:
        """Write every problem as CSV (for spreadsheets) plus a JSON summary beside it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "unit", "line", "column", "reason", "value"])
            for p in self.problems:
                writer.writerow([p.file, p.unit, p.line, p.column or "", p.reason, p.value or ""])
        summary = {
            "committed": self.committed,
            "skip_bad": self.skip_bad,
            "stats": {k: asdict(s) for k, s in self.stats.items()},
            "problems": len(self.problems),
            "notes": self.notes,
        }
        path.with_suffix(".json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        self.report_file = path
        return path
