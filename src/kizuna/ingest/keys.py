"""Record keys: ids for records that have none, 64-bit key hashes, duplicates.

A record may appear once per import. Keys are compared as 64-bit hashes with
numpy, so a million keys cost a fraction of a second; Python only touches the
duplicates, to say where the first copy was.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kizuna.ingest.kinds import Kind


def record_keys(kind: Kind, values: dict[str, pa.Array]) -> pa.Array:
    """Each record's key as text, parts joined by U+001F, for naming duplicates.

    For a kind that derives its key, a record without one gets its content
    hash, written back into ``values`` so that the upsert stores the same id.
    """
    parts = [pc.cast(values[k], pa.string()) for k in kind.key]
    if kind.derive_key:
        key_field = kind.key[0]
        derived = content_hash(kind, values)
        values[key_field] = pc.coalesce(values[key_field], derived)
        parts = [values[key_field]]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], "\x1f")


def content_hash(kind: Kind, values: dict[str, pa.Array]) -> pa.Array:
    """A stable id for records that have none, so a re-import finds them again."""
    names = [f.name for f in kind.fields if f.name not in kind.key]
    columns = [pc.cast(values[n], pa.string()).to_pylist() for n in names]
    out = []
    for row in zip(*columns, strict=True):
        text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        out.append("h:" + hashlib.sha1(text.encode()).hexdigest()[:32])  # noqa: S324 - an id, not security
    return pa.array(out, pa.string())


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits so combined key hashes do not collide."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def key_hashes(
    kind: Kind, values: dict[str, pa.Array], db: dict[str, pa.Array]
) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of each record's key, and which records have a whole key.

    References are hashed by their resolved integer id (numpy arithmetic,
    milliseconds for a million rows); only text keys need a string hash.
    """
    import pandas as pd

    combined = np.zeros(len(next(iter(values.values()))), dtype=np.uint64)
    valid = np.ones(len(combined), dtype=bool)
    for name in kind.key:
        f = kind.field_map[name]
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


class SeenKeys:
    """The keys seen so far in one import of one kind, and where each first stood.

    Records are numbered across all the files of the import, so a duplicate in
    a later file can name the file and record of the first copy.
    """

    def __init__(self, kind: Kind) -> None:
        #: The key's field names as messages show them, e.g. ``order_id+line_no``.
        self.label = "+".join(kind.key)
        self._hashes = np.empty(0, dtype=np.uint64)
        self._where = np.empty(0, dtype=np.int64)
        self._file_start = 0
        self._files_started: list[tuple[int, str]] = []

    def start_file(self, path: str) -> None:
        """Records from here on belong to ``path``."""
        self._files_started.append((self._file_start, path))

    def end_file(self, records: int) -> None:
        """The file started last held ``records`` records; number the next file after them."""
        self._file_start += records

    def duplicates(
        self, hashed: tuple[np.ndarray, np.ndarray], keys: pa.Array, first_record: int
    ) -> list[tuple[int, str]]:
        """The rows of a batch whose key was already seen, each with the reason.

        ``first_record`` is the batch's first record within its file; keys of
        fresh rows are remembered for the batches and files that follow.
        """
        hashes, valid = hashed
        start = self._file_start + first_record
        records = np.arange(start, start + len(hashes))
        import pandas as pd

        seen_before = (
            np.isin(hashes, self._hashes) & valid
            if len(self._hashes)
            else np.zeros(len(hashes), dtype=bool)
        )
        repeat_in_batch = pd.Series(hashes).duplicated(keep="first").to_numpy() & valid
        dup = seen_before | repeat_in_batch
        fresh = valid & ~dup
        self._hashes = np.concatenate([self._hashes, hashes[fresh]])
        self._where = np.concatenate([self._where, records[fresh]])
        if not dup.any():
            return []
        order = np.argsort(self._hashes, kind="stable")
        rows = []
        key_list = keys.to_pylist()
        for i in np.flatnonzero(dup).tolist():
            pos = np.searchsorted(self._hashes, hashes[i], sorter=order)
            first = int(self._where[order[pos]])
            shown = key_list[i].replace("\x1f", " / ")
            rows.append(
                (
                    i,
                    f"duplicate {self.label} {shown!r}: the same record is also "
                    f"{self._describe_record(first)}; each record may appear once "
                    "per import",
                )
            )
        return rows

    def _describe_record(self, record: int) -> str:
        """Where a record (numbered across all files of this import) sits."""
        files = self._files_started
        for (start, path), nxt in zip(files, [*files[1:], (None, None)], strict=True):
            if nxt[0] is None or record < nxt[0]:
                return f"in {Path(path).name} (record {record - start + 1})"
        return f"record {record + 1}"
