"""Writes to a database with an HNSW index until it is killed (used by test_persistence_crash.py).

    python crash_worker.py EXTENSION DATABASE JOURNAL SEED

Every operation is journalled as `intent <json>` before it runs and `done` after it committed,
so the test knows which operations committed and which one may have been cut short.
"""
import json
import random
import sys

import duckdb

DIM = 32
# Row vectors depend only on (id, ver): the checker recomputes them with the same expression.
VECTOR = f"list_transform(range({DIM}), lambda j: ((hash(id::BIGINT * 1000003 + ver * 131 + j) % 2000) / 1000.0 - 1))::FLOAT[{DIM}]"


def operations(rng, next_id):
    """An endless seeded stream of SQL writes."""
    while True:
        kind = rng.choices(["insert", "delete", "update", "checkpoint", "index", "drop"], [5, 2, 2, 2, 2, 1])[0]
        if kind == "insert":
            n = rng.randint(20, 400)
            yield (
                f"INSERT INTO t SELECT id, 0 AS ver, {VECTOR} AS v FROM "
                f"(SELECT range::INTEGER AS id, 0 AS ver FROM range({next_id}, {next_id + n}))"
            )
            next_id += n
        elif kind == "delete":
            yield f"DELETE FROM t WHERE id % {rng.randint(3, 9)} = {rng.randint(0, 2)} AND id < {rng.randint(0, next_id)}"
        elif kind == "update":
            yield f"UPDATE t SET ver = ver + 1, v = {VECTOR.replace('ver', '(ver + 1)')} WHERE id % {rng.randint(4, 11)} = 1"
        elif kind == "checkpoint":
            yield "CHECKPOINT"
        elif kind == "drop":
            yield "DROP INDEX IF EXISTS t_v"
        else:
            yield "CREATE INDEX IF NOT EXISTS t_v ON t USING HNSW (v) WITH (M = 8, ef_construction = 64)"


def main():
    extension, database, journal_path, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rng = random.Random(seed)
    con = duckdb.connect(database, config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")  # before the first write: DuckDB binds the index then
    con.execute(f"CREATE TABLE IF NOT EXISTS t (id INTEGER, ver INTEGER, v FLOAT[{DIM}])")
    next_id = (con.execute("SELECT coalesce(max(id), 0) + 1 FROM t").fetchone()[0]) + seed * 100_000
    with open(journal_path, "a", buffering=1) as journal:
        journal.write("ready\n")
        for sql in operations(rng, next_id):
            journal.write("intent " + json.dumps(sql) + "\n")
            con.execute(sql)
            journal.write("done\n")


if __name__ == "__main__":
    main()
