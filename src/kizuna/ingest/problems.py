"""Problems found by an import, and the report that lists every one of them."""

from __future__ import annotations

import csv
import json
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

    def __str__(self) -> str:
        shown = ""
        if self.value is not None:
            text = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            shown = f" (got {text!r})"
        return f"{self.where()}: {self.reason}{shown}"


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
