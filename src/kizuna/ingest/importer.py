"""The import pipeline: read, validate, resolve references, upsert.

One call imports one kind from one or more files inside the caller's
transaction. Good rows are always written (so later kinds in the same import
can refer to them) and the caller decides at the end: commit, or roll back
when any problem was found and the import is all-or-nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

from kizuna.config import Settings
from kizuna.domain.vocabulary import SURVEY_SCALES
from kizuna.ingest.convert import ConvertContext, convert
from kizuna.ingest.kinds import Field, Kind
from kizuna.ingest.problems import KindStats, Problem
from kizuna.ingest.readers import Batch, FileUnreadable, Source
from kizuna.store import bulk, tables

ATTR_PREFIXES = ("attr.", "attr_", "attributes.")


@dataclass
class ImportOptions:
    """How to read the files of one kind."""

    mapping: dict[str, str] = field(default_factory=dict)
    ignore: Sequence[str] = ()
    encoding: str | None = None
    format: str | None = None
    delimiter: str | None = None
    skip_bad: bool = False
    rejects_dir: Path | None = None


@dataclass
class _Header:
    rename: dict[str, str]
    attributes: dict[str, str]
    present: set[str]


def _norm(name: str) -> str:
    return name.strip().lower()


def plan_header(
    kind: Kind, source: Source, options: ImportOptions
) -> tuple[_Header | None, list[Problem]]:
    """Match file columns to fields; report missing, unknown and duplicated columns."""
    problems: list[Problem] = []
    fields = kind.field_map
    by_norm = {_norm(c): c for c in source.columns}
    rename: dict[str, str] = {}
    attributes: dict[str, str] = {}
    claimed: set[str] = set()
    for fname, column in options.mapping.items():
        if fname not in fields:
            problems.append(
                Problem(
                    str(source.path),
                    None,
                    None,
                    f"--map names unknown field {fname!r}; {kind.name} fields are "
                    f"{', '.join(fields)}",
                )
            )
            continue
        actual = by_norm.get(_norm(column))
        if actual is None:
            problems.append(
                Problem(
                    str(source.path),
                    1,
                    column,
                    f"--map {fname}={column}: the file has no column {column!r}; "
                    f"its columns are {', '.join(source.columns)}",
                )
            )
            continue
        rename[actual] = fname
        claimed.add(actual)
    ignored = {_norm(c) for c in options.ignore}
    seen: dict[str, int] = {}
    for column in source.columns:
        seen[_norm(column)] = seen.get(_norm(column), 0) + 1
    for name, count in seen.items():
        if count > 1:
            problems.append(
                Problem(
                    str(source.path),
                    1,
                    name,
                    f"column {name!r} appears {count} times in the header; "
                    "each column must appear once",
                )
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
        problems.append(
            Problem(
                str(source.path),
                1,
                column,
                f"unknown column {column!r} for {kind.name}; {hint}map it with "
                f"--map FIELD={column}, drop it with --ignore {column!r}{extra}",
            )
        )
    present = set(rename.values())
    required = [f for f in kind.required if not (kind.derive_key and f in kind.key)]
    missing = [f for f in required if f not in present]
    if missing:
        problems.append(
            Problem(
                str(source.path),
                1,
                None,
                f"missing required column(s) {', '.join(missing)}; the file's columns are "
                f"{', '.join(source.columns) or '(none)'}; if one of them holds this data, pass "
                f"--map {missing[0]}=<column>",
            )
        )
    if problems:
        guess = _guess_kind(source.columns)
        if guess and guess != kind.name:
            problems.append(
                Problem(
                    str(source.path),
                    1,
                    None,
                    f"the columns look like a {guess} file; import it as "
                    f"`kizuna import {guess} {source.path.name}`",
                )
            )
        return None, problems
    return _Header(rename, attributes, present), []


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits so combined key hashes do not collide."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _guess_kind(columns: Sequence[str]) -> str | None:
    """The kind whose fields best match a header, to catch a file given to the wrong kind."""
    from kizuna.ingest.kinds import KINDS

    names = {_norm(c) for c in columns}
    best, score = None, 0.0
    for kind in KINDS.values():
        fields = set(kind.field_map)
        overlap = len(names & fields) / max(len(names), 1)
        if overlap > score and all(
            r in names for r in kind.required if not (kind.derive_key and r in kind.key)
        ):
            best, score = kind.name, overlap
    return best if score >= 0.5 else None


class _RefCache:
    """external id -> surrogate id lookups, loaded once per kind per import."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._maps: dict[tuple[str, str | None], pa.Table] = {}

    def get(self, table: str, extra: str | None = None) -> pa.Table:
        key = (table, extra)
        if key not in self._maps:
            self._maps[key] = bulk.key_map(self.conn, tables.metadata.tables[table], extra)
        return self._maps[key]

    def forget(self, table: str) -> None:
        for key in [k for k in self._maps if k[0] == table]:
            del self._maps[key]


class KindImporter:
    """Imports the files of one kind into the open connection."""

    def __init__(
        self,
        conn: sa.Connection,
        settings: Settings,
        kind: Kind,
        run_id: int,
        refs: _RefCache,
        options: ImportOptions,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.kind = kind
        self.run_id = run_id
        self.refs = refs
        self.options = options
        self.progress = progress
        self.table = tables.metadata.tables[kind.table]
        self.ctx = ConvertContext(settings.tz, settings.currency_exponent, settings.max_field_chars)
        self.stats = KindStats(kind.name)
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.rejects: list[Path] = []
        self._seen_hashes = np.empty(0, dtype=np.uint64)
        self._seen_where = np.empty(0, dtype=np.int64)
        #: Records of earlier files, so record numbers are unique across files.
        self._file_start = 0
        self._files_started: list[tuple[int, str]] = []
        self._written = 0
        self._self_refs: list[tuple[str, str, int, str]] = []

    # ---- top level -------------------------------------------------------------
    def run(self, paths: Sequence[Path]) -> KindStats:
        started = time.perf_counter()
        before = bulk.count_rows(self.conn, self.table)
        for path in paths:
            self.stats.files.append(str(path))
            self._import_file(Path(path))
        self._resolve_self_refs()
        after = bulk.count_rows(self.conn, self.table)
        self.stats.inserted = after - before
        self.stats.updated = self._written - self.stats.inserted
        self.stats.unchanged = self.stats.rows_valid - self._written
        self.stats.seconds = time.perf_counter() - started
        self.refs.forget(self.kind.table)
        return self.stats

    def _import_file(self, path: Path) -> None:
        try:
            source = Source.open(
                path, self.options.format, self.options.encoding, self.options.delimiter
            )
        except FileUnreadable as exc:
            self.problems.append(exc.problem)
            return
        self.notes += source.notes
        self._files_started.append((self._file_start, str(path)))
        header: _Header | None = None
        if source.format != "jsonl":
            header, header_problems = plan_header(self.kind, source, self.options)
            if header is None:
                self.problems += header_problems
                return
        try:
            for batch in source.batches(self.settings.import_batch_rows):
                if source.format == "jsonl" and header is None:
                    header, header_problems = plan_header(self.kind, source, self.options)
                    if header is None:
                        self.problems += header_problems
                        return
                assert header is not None
                self._import_batch(source, header, batch)
        except FileUnreadable as exc:
            self.problems.append(exc.problem)
            return
        self._file_start += source.records
        if source.problems:
            self.problems += source.problems
            self.stats.rejected += len(source.problems)
            self.stats.rows_read += len(source.problems)
        if source.records == 0 and not source.problems:
            self.problems.append(
                Problem(str(path), None, None, "the file has a header but no data rows")
            )

    # ---- one batch -------------------------------------------------------------
    def _import_batch(self, source: Source, header: _Header, batch: Batch) -> None:
        raw = batch.table
        n = raw.num_rows
        self.stats.rows_read += n
        bad: dict[int, list[tuple[str | None, str]]] = {}

        def flag(rows: list[tuple[int, str]], column: str | None) -> None:
            for i, reason in rows:
                bad.setdefault(i, []).append((column, reason))

        by_field = {fname: raw.column(col) for col, fname in header.rename.items()}
        values: dict[str, pa.Array] = {}
        for f in self.kind.fields:
            if f.name in by_field:
                converted, problems = convert(by_field[f.name], f, self.ctx)
                flag(problems, f.name)
            else:
                converted = self._default(f, n)
            values[f.name] = converted
        self._kind_rules(values, flag)
        keys = self._keys(values, raw, header, flag)
        db = self._db_columns(values, header, raw, flag)
        self._check_duplicates(self._key_hashes(values, db), keys, source, batch, flag)
        bad_rows = sorted(bad)
        if bad_rows:
            self._report(source, header, batch, raw, bad, bad_rows)
        good = np.ones(n, dtype=bool)
        good[bad_rows] = False
        data = pa.table(db).filter(pa.array(good)) if bad_rows else pa.table(db)
        data = data.append_column(
            "import_run_id", pa.array(np.full(data.num_rows, self.run_id), pa.int64())
        )
        self.stats.rows_valid += data.num_rows
        key_cols = [self.kind.field_map[k].db_column for k in self.kind.key]
        self._written += bulk.upsert(self.conn, self.table, data, key_cols)
        if self.progress:
            self.progress(n)

    def _default(self, f: Field, n: int) -> pa.Array:
        typ = {
            "int": pa.int64(),
            "money": pa.int64(),
            "bool": pa.bool_(),
            "datetime": pa.timestamp("us", tz="UTC"),
            "date": pa.date32(),
        }.get(f.type, pa.string())
        if f.default is None:
            return pa.nulls(n, typ)
        return pa.array([f.default] * n, typ)

    # ---- rules that involve more than one column ---------------------------------
    def _kind_rules(
        self, values: dict[str, pa.Array], flag: Callable[[list[tuple[int, str]], str | None], None]
    ) -> None:
        name = self.kind.name
        if name == "survey_answers":
            kind, score = values["kind"].to_pylist(), values["score"].to_pylist()
            rows = []
            for i, (k, s) in enumerate(zip(kind, score, strict=True)):
                if k in SURVEY_SCALES and s is not None:
                    low, high = SURVEY_SCALES[k]
                    if not low <= s <= high:
                        rows.append((i, f"a {k.upper()} score must be between {low} and {high}"))
            flag(rows, "score")
        if name == "order_lines":
            qty, price = values["quantity"], values["unit_price"]
            computed = pc.multiply(qty, price)
            values["amount"] = pc.coalesce(values["amount"], computed)
        for start, end in (("opened_at", "resolved_at"), ("enrolled_at", "completed_at")):
            if start in values and end in values:
                before = pc.fill_null(pc.less(values[end], values[start]), False)
                idx = pc.indices_nonzero(before).to_pylist()
                flag([(i, f"{end} is before {start}") for i in idx], end)

    def _keys(
        self,
        values: dict[str, pa.Array],
        raw: pa.Table,
        header: _Header,
        flag: Callable[[list[tuple[int, str]], str | None], None],
    ) -> pa.Array:
        parts = [pc.cast(values[k], pa.string()) for k in self.kind.key]
        if self.kind.derive_key:
            key_field = self.kind.key[0]
            derived = self._content_hash(values)
            values[key_field] = pc.coalesce(values[key_field], derived)
            parts = [values[key_field]]
        if len(parts) == 1:
            return parts[0]
        return pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], "\x1f")

    def _content_hash(self, values: dict[str, pa.Array]) -> pa.Array:
        """A stable id for records that have none, so a re-import finds them again."""
        names = [f.name for f in self.kind.fields if f.name not in self.kind.key]
        columns = [pc.cast(values[n], pa.string()).to_pylist() for n in names]
        out = []
        for row in zip(*columns, strict=True):
            text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
            out.append("h:" + hashlib.sha1(text.encode()).hexdigest()[:32])  # noqa: S324 - an id, not security
        return pa.array(out, pa.string())

    def _key_hashes(
        self, values: dict[str, pa.Array], db: dict[str, pa.Array]
    ) -> tuple[np.ndarray, np.ndarray]:
        """A 64-bit hash of each record's key, and which records have a whole key.

        References are hashed by their resolved integer id (numpy arithmetic,
        milliseconds for a million rows); only text keys need a string hash.
        """
        import pandas as pd

        combined = np.zeros(len(next(iter(values.values()))), dtype=np.uint64)
        valid = np.ones(len(combined), dtype=bool)
        for name in self.kind.key:
            f = self.kind.field_map[name]
            column = db.get(f.db_column) if f.type == "ref" else values[name]
            if column is None:
                column = values[name]
            valid &= pc.is_valid(column).to_numpy(zero_copy_only=False)
            if pa.types.is_integer(column.type):
                part = pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy().astype(np.uint64)
            else:
                series = pd.Series(pc.fill_null(column, "").to_pandas(types_mapper=pd.ArrowDtype))
                part = pd.util.hash_pandas_object(series, index=False).to_numpy(dtype=np.uint64)
            with np.errstate(over="ignore"):
                combined = _mix(combined * np.uint64(0x9E3779B97F4A7C15) + _mix(part))
        return combined, valid

    def _check_duplicates(
        self,
        hashed: tuple[np.ndarray, np.ndarray],
        keys: pa.Array,
        source: Source,
        batch: Batch,
        flag: Callable[[list[tuple[int, str]], str | None], None],
    ) -> None:
        """Flag every record whose key was already seen in this import.

        Keys are compared as 64-bit hashes with numpy, so a million keys cost
        a fraction of a second; Python only touches the duplicates, to say
        where the first copy was.
        """
        hashes, valid = hashed
        start = self._file_start + batch.first_record
        records = np.arange(start, start + len(hashes))
        import pandas as pd

        seen_before = (
            np.isin(hashes, self._seen_hashes) & valid
            if len(self._seen_hashes)
            else np.zeros(len(hashes), dtype=bool)
        )
        repeat_in_batch = pd.Series(hashes).duplicated(keep="first").to_numpy() & valid
        dup = seen_before | repeat_in_batch
        fresh = valid & ~dup
        self._seen_hashes = np.concatenate([self._seen_hashes, hashes[fresh]])
        self._seen_where = np.concatenate([self._seen_where, records[fresh]])
        if not dup.any():
            return
        label = "+".join(self.kind.key)
        order = np.argsort(self._seen_hashes, kind="stable")
        rows = []
        key_list = keys.to_pylist()
        for i in np.flatnonzero(dup).tolist():
            pos = np.searchsorted(self._seen_hashes, hashes[i], sorter=order)
            first_record = int(self._seen_where[order[pos]])
            shown = key_list[i].replace("\x1f", " / ")
            rows.append(
                (
                    i,
                    f"duplicate {label} {shown!r}: the same record is also "
                    f"{self._describe_record(first_record)}; each record may appear once "
                    "per import",
                )
            )
        flag(rows, label)

    def _describe_record(self, record: int) -> str:
        """Where a record (numbered across all files of this import) sits."""
        files = self._files_started
        for (start, path), nxt in zip(files, [*files[1:], (None, None)], strict=True):
            if nxt[0] is None or record < nxt[0]:
                return f"in {Path(path).name} (record {record - start + 1})"
        return f"record {record + 1}"

    # ---- references and table columns ----------------------------------------------
    def _resolve(
        self, refs: pa.Array, target: str, extra: str | None = None
    ) -> tuple[pa.Array, pa.Array | None]:
        mapping = self.refs.get(target, extra)
        idx = pc.index_in(refs, value_set=mapping.column("external_id"))
        ids = pc.take(mapping.column("id"), idx)
        other = pc.take(mapping.column(extra), idx) if extra else None
        return ids, other

    def _db_columns(
        self,
        values: dict[str, pa.Array],
        header: _Header,
        raw: pa.Table,
        flag: Callable[[list[tuple[int, str]], str | None], None],
    ) -> dict[str, pa.Array]:
        db: dict[str, pa.Array] = {}
        for f in self.kind.fields:
            value = values[f.name]
            if f.type == "ref" and f.ref:
                target = self.kind.name if f.ref == self.kind.name else f.ref
                if target == self.kind.name:
                    # A tree inside one file (categories): link parents after all rows exist.
                    keys = values[self.kind.key[0]].to_pylist()
                    for i, (k, parent) in enumerate(zip(keys, value.to_pylist(), strict=True)):
                        if parent is not None and k is not None:
                            self._self_refs.append((k, parent, i, f.name))
                    db[f.db_column] = pa.nulls(len(value), pa.int64())
                    continue
                table = tables.metadata.tables[target]
                extra = (
                    "customer_id" if (self.kind.customer_from_order and f.ref == "orders") else None
                )
                ids, customers = self._resolve(value, table.name, extra)
                unknown = pc.and_(pc.is_valid(value), pc.is_null(ids))
                idx = pc.indices_nonzero(unknown).to_pylist()
                if idx:
                    names = pc.take(value, pa.array(idx)).to_pylist()
                    flag(
                        [
                            (
                                i,
                                f"no {target[:-1] if target.endswith('s') else target} with "
                                f"id {v!r}; import {target} first or include them in this import",
                            )
                            for i, v in zip(idx, names, strict=True)
                        ],
                        f.name,
                    )
                db[f.db_column] = ids
                if customers is not None:
                    db["customer_id"] = customers
                continue
            if f.type == "ref":
                continue
            db[f.db_column] = value
        if self.kind.attributes_column:
            db[self.kind.attributes_column] = self._attributes(raw, header)
        return db

    def _attributes(self, raw: pa.Table, header: _Header) -> pa.Array:
        if not header.attributes:
            return pa.nulls(raw.num_rows, pa.string())
        columns = {name: raw.column(col).to_pylist() for col, name in header.attributes.items()}
        out: list[str | None] = []
        for i in range(raw.num_rows):
            doc = {k: v[i] for k, v in columns.items() if v[i] not in (None, "")}
            out.append(json.dumps(doc, ensure_ascii=False, sort_keys=True) if doc else None)
        return pa.array(out, pa.string())

    def _resolve_self_refs(self) -> None:
        if not self._self_refs:
            return
        self.refs.forget(self.kind.table)
        mapping = self.refs.get(self.kind.table)
        ids = dict(
            zip(
                mapping.column("external_id").to_pylist(),
                mapping.column("id").to_pylist(),
                strict=True,
            )
        )
        updates = []
        for key, parent, _i, fname in self._self_refs:
            if parent not in ids:
                self.problems.append(
                    Problem(
                        self.stats.files[-1],
                        None,
                        fname,
                        f"{self.kind.key[0]} {key!r} names parent {parent!r}, which does not exist",
                    )
                )
                self.stats.rejected += 1
                continue
            updates.append({"k": key, "p": ids[parent]})
        column = self.kind.field_map[self._self_refs[0][3]].db_column
        if updates:
            stmt = (
                sa.update(self.table)
                .where(self.table.c.external_id == sa.bindparam("k"))
                .values({column: sa.bindparam("p")})
            )
            self.conn.execute(stmt, updates)

    # ---- reporting --------------------------------------------------------------------
    def _report(
        self,
        source: Source,
        header: _Header,
        batch: Batch,
        raw: pa.Table,
        bad: dict[int, list[tuple[str | None, str]]],
        rows: list[int],
    ) -> None:
        self.stats.rejected += len(rows)
        originals = {fname: col for col, fname in header.rename.items()}
        for i in rows:
            line = source.line_of(batch, i)
            for column, reason in bad[i]:
                original = originals.get(column or "", column)
                value = None
                if original and original in raw.column_names:
                    cell = raw.column(original)[i].as_py()
                    value = None if cell is None else str(cell)
                self.problems.append(
                    Problem(str(source.path), line, original, reason, value, unit=source.unit)
                )
        if self.options.skip_bad and self.options.rejects_dir is not None:
            self._write_rejects(source, batch, raw, bad, rows)

    def _write_rejects(
        self,
        source: Source,
        batch: Batch,
        raw: pa.Table,
        bad: dict[int, list[tuple[str | None, str]]],
        rows: list[int],
    ) -> None:
        assert self.options.rejects_dir is not None
        self.options.rejects_dir.mkdir(parents=True, exist_ok=True)
        path = self.options.rejects_dir / f"{source.path.stem}.rejects.csv"
        subset = raw.take(pa.array(rows)).cast(
            pa.schema([(c, pa.string()) for c in raw.column_names])
        )
        reasons = ["; ".join(f"{c}: {r}" if c else r for c, r in bad[i]) for i in rows]
        lines = [source.line_of(batch, i) for i in rows]
        subset = subset.append_column("_line", pa.array(lines, pa.int64()))
        subset = subset.append_column("_problems", pa.array(reasons, pa.string()))
        exists = path.exists() and path in self.rejects
        with path.open("ab" if exists else "wb") as fh:
            pacsv.write_csv(subset, fh, pacsv.WriteOptions(include_header=not exists))
        if path not in self.rejects:
            self.rejects.append(path)
