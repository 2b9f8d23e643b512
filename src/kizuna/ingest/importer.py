"""The import pipeline: read, validate, resolve references, upsert.

One call imports one kind from one or more files inside the caller's
transaction. Good rows are always written (so later kinds in the same import
can refer to them) and the caller decides at the end: commit, or roll back
when any problem was found and the import is all-or-nothing.
"""

from __future__ import annotations

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
from kizuna.ingest.header import Header, plan_header
from kizuna.ingest.keys import SeenKeys, key_hashes, record_keys
from kizuna.ingest.kinds import Field, Kind
from kizuna.ingest.problems import KindStats, Problem
from kizuna.ingest.readers import Batch, FileUnreadable, Source
from kizuna.store import bulk, tables


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
        self._seen = SeenKeys(kind)
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
        self._seen.start_file(str(path))
        header: Header | None = None
        if source.format != "jsonl":
            header = self._plan_header(source)
            if header is None:
                return
        try:
            for batch in source.batches(self.settings.import_batch_rows):
                if header is None:
                    # JSON Lines: the columns are known once the first batch is read.
                    header = self._plan_header(source)
                    if header is None:
                        return
                self._import_batch(source, header, batch)
        except FileUnreadable as exc:
            self.problems.append(exc.problem)
            return
        self._seen.end_file(source.records)
        if source.problems:
            self.problems += source.problems
            self.stats.rejected += len(source.problems)
            self.stats.rows_read += len(source.problems)
        if source.records == 0 and not source.problems:
            self.problems.append(
                Problem(str(path), None, None, "the file has a header but no data rows")
            )

    def _plan_header(self, source: Source) -> Header | None:
        """The file's header matched to the kind, or ``None`` with its problems recorded."""
        header, problems = plan_header(self.kind, source, self.options.mapping, self.options.ignore)
        self.problems += problems
        return header

    # ---- one batch -------------------------------------------------------------
    def _import_batch(self, source: Source, header: Header, batch: Batch) -> None:
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
        keys = record_keys(self.kind, values)
        db = self._db_columns(values, header, raw, flag)
        if self.kind.name == "returns":
            self._check_returned_lines(values, db, flag)
        hashed = key_hashes(self.kind, values, db)
        flag(self._seen.duplicates(hashed, keys, batch.first_record), self._seen.label)
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

    def _check_returned_lines(
        self,
        values: dict[str, pa.Array],
        db: dict[str, pa.Array],
        flag: Callable[[list[tuple[int, str]], str | None], None],
    ) -> None:
        """A return must name a line of its order and return no more than was bought.

        Checked against the lines already stored (in this transaction), a
        chunk of orders at a time, so points reversed later are computed from
        real lines.
        """
        lines = tables.order_lines
        order_ids = db["order_id"].to_pylist()
        wanted = sorted({o for o in order_ids if o is not None})
        bought: dict[tuple[int, int], int] = {}
        for start in range(0, len(wanted), 10_000):
            chunk = wanted[start : start + 10_000]
            query = sa.select(lines.c.order_id, lines.c.line_no, lines.c.quantity).where(
                lines.c.order_id.in_(chunk)
            )
            for order_id, line_no, quantity in self.conn.execute(query):
                bought[(order_id, line_no)] = quantity
        rows: list[tuple[int, str]] = []
        names = values["order_id"].to_pylist()
        for i, (order_id, line_no, quantity) in enumerate(
            zip(
                order_ids,
                values["line_no"].to_pylist(),
                values["quantity"].to_pylist(),
                strict=True,
            )
        ):
            if order_id is None or line_no is None:
                continue
            had = bought.get((order_id, line_no))
            if had is None:
                rows.append(
                    (i, f"order {names[i]!r} has no line {line_no}; import its order_lines first")
                )
            elif quantity is not None and quantity > had:
                rows.append(
                    (
                        i,
                        f"returns {quantity} but line {line_no} of order {names[i]!r} has only {had}",
                    )
                )
        flag(rows, "line_no")

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
        header: Header,
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

    def _attributes(self, raw: pa.Table, header: Header) -> pa.Array:
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
        header: Header,
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
