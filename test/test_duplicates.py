"""Identical vectors through SQL: a learning database stores the same embedding again and again.
Copies must not cut other rows off the index (before, after 10k copies of one vector, 200 distinct
rows inserted later were never found by their own vector), copies come back as rows of their own,
and they survive a checkpoint and reopen. Oracle: each row's own vector, and the exact plan."""
import numpy as np
import pyarrow as pa

DIM = 64


def insert(con, ids, vectors):
    con.register("batch", pa.table({"id": ids, "v": pa.FixedSizeListArray.from_arrays(
        pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel()), DIM)}))
    con.execute(f"INSERT INTO t SELECT id::INTEGER, v::FLOAT[{DIM}] FROM batch")
    con.unregister("batch")


def missed_by_own_vector(con, ids, vectors):
    """Rows among `ids` that the top-10 index query for their own vector does not return."""
    sql = f"SELECT id FROM t ORDER BY array_distance(v, ?::FLOAT[{DIM}]) LIMIT 10"
    assert "HNSW_INDEX_SCAN" in con.execute("EXPLAIN " + sql, [vectors[0].tolist()]).fetchall()[0][1]
    return [i for i, v in zip(ids, vectors) if i not in {r[0] for r in con.execute(sql, [v.tolist()]).fetchall()}]


def test_rows_after_ten_thousand_copies_are_found_and_copies_persist(connect, tmp_path):
    rng = np.random.default_rng(11)
    copy = rng.normal(size=DIM).astype(np.float32)
    distinct = rng.normal(size=(200, DIM)).astype(np.float32)
    path = tmp_path / "dups.duckdb"
    con = connect(path)
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    insert(con, np.arange(10_000), np.tile(copy, (10_000, 1)))
    con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    insert(con, np.arange(10_000, 10_200), distinct)  # after the index: maintained row by row
    ids = list(range(10_000, 10_200))
    assert missed_by_own_vector(con, ids, distinct) == []
    # The copy's own vector: ten rows at distance 0, as the exact plan gives.
    rows = con.execute(f"SELECT id, array_distance(v, ?::FLOAT[{DIM}]) AS d FROM t ORDER BY d LIMIT 10",
                       [copy.tolist()]).fetchall()
    assert len(rows) == 10 and all(d == 0 and i < 10_000 for i, d in rows)
    # Deleting most copies leaves the rest findable; the rows survive a checkpoint and a reopen.
    con.execute("DELETE FROM t WHERE id < 9_995")
    con.execute("CHECKPOINT")
    con.close()
    con = connect(path)
    assert missed_by_own_vector(con, ids, distinct) == []
    rows = con.execute(f"SELECT id FROM t ORDER BY array_distance(v, ?::FLOAT[{DIM}]) LIMIT 10",
                       [copy.tolist()]).fetchall()
    assert sorted(r[0] for r in rows[:5]) == list(range(9_995, 10_000))
