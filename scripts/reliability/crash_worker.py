"""Writes to a database with an HNSW index until it is killed (run by scripts/reliability/kill9.py,
which test/test_persistence_crash.py also uses).

    python scripts/reliability/crash_worker.py EXTENSION DATABASE JOURNAL SEED

Every operation is journalled as `intent <json>` before it runs and `done` after it committed,
so the checker knows which operations committed and which one may have been cut short. Runs as a
plain script (no package imports), so the checker can start it with any working directory.
"""
import json
import random
import sys

import duckdb

DIM = 32
# Row vectors depend only on (id, ver): the checker recomputes them with the same expression. The
# hash inputs of two different (id, ver) never share a whole vector, so no two rows are identical.
VECTOR = f"list_transform(range({DIM}), lambda j: ((hash(id::BIGINT * 1000003 + ver * 131 + j) % 2000) / 1000.0 - 1))::FLOAT[{DIM}]"
CREATE_INDEX = "CREATE INDEX IF NOT EXISTS t_v ON t USING HNSW (v) WITH (M = 8, ef_construction = 64)"
COMPACT = "PRAGMA hnsw_compact_index('t_v')"


def operations(rng, next_id, has_index):
    """An endless seeded stream of SQL writes. `has_index` says whether t_v exists at the start;
    compaction needs the index, so without it a CREATE INDEX goes first."""
    while True:
        kind = rng.choices(["insert", "delete", "update", "checkpoint", "index", "drop", "compact"],
                           [5, 3, 2, 2, 2, 1, 2])[0]
        if kind == "insert":
            n = rng.randint(20, 200)
            yield (
                f"INSERT INTO t SELECT id, 0 AS ver, {VECTOR} AS v FROM "
                f"(SELECT range::INTEGER AS id, 0 AS ver FROM range({next_id}, {next_id + n}))"
            )
            next_id += n
        elif kind == "delete":
            yield f"DELETE FROM t WHERE id % {rng.randint(2, 6)} = {rng.randint(0, 1)} AND id < {rng.randint(0, next_id)}"
        elif kind == "update":
            yield f"UPDATE t SET ver = ver + 1, v = {VECTOR.replace('ver', '(ver + 1)')} WHERE id % {rng.randint(4, 11)} = 1"
        elif kind == "checkpoint":
            yield "CHECKPOINT"
        elif kind == "drop":
            yield "DROP INDEX IF EXISTS t_v"
            has_index = False
        elif kind == "compact":
            if not has_index:
                yield CREATE_INDEX
                has_index = True
            # Deleted rows first, so that compaction has nodes to remove and lists to repair.
            yield f"DELETE FROM t WHERE id % {rng.randint(5, 9)} = {rng.randint(0, 4)}"
            yield COMPACT
        else:
            yield CREATE_INDEX
            has_index = True


def main():
    extension, database, journal_path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rng = random.Random(seed)
    con = duckdb.connect(database, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")  # before the first write: DuckDB binds the index then
    con.execute(f"CREATE TABLE IF NOT EXISTS t (id INTEGER, ver INTEGER, v FLOAT[{DIM}])")
    # New ids follow the live ones; an id whose row was deleted earlier may come back (with the
    # same vector, since ver restarts at 0): a case the index must handle too.
    next_id = con.execute("SELECT coalesce(max(id), 0) + 1 FROM t").fetchone()[0]
    has_index = con.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = 't_v'").fetchone()[0] > 0
    with open(journal_path, "a", buffering=1) as journal:
        journal.write("ready\n")
        for sql in operations(rng, next_id, has_index):
            journal.write("intent " + json.dumps(sql) + "\n")
            con.execute(sql)
            journal.write("done\n")


if __name__ == "__main__":
    main()
