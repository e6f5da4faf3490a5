"""Candidate rows whose vectors come from the index instead of the table.

A float32 index under l2sq or ip stores each vector bit for bit as inserted, so the scan fetches
candidate rows without their FLOAT[n] column and copies the vectors in from the index (a
FLOAT[n] row costs DuckDB several times more to fetch than the rest of the row). The oracle is
the exact plan (the extension's optimizer disabled) in the same transaction: with an ef that
covers the table, the rows, the vectors and the distances must be identical, bit for bit.
"""
import numpy as np
import pyarrow as pa
import pytest

DIM = 384
ROWS = 4000
K = 10
DISTANCES = {"l2sq": "array_distance", "ip": "array_negative_inner_product", "cosine": "array_cosine_distance"}


def clustered(n, seed, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(24, DIM)).astype(np.float32) * 4
    return (centres[rng.integers(0, 24, size=n)] + spread * rng.normal(size=(n, DIM))).astype(np.float32)


def load(con, table, ids, vectors, tags=None):
    columns = {"id": ids, "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
               "tag": tags if tags is not None else ids % 5}
    con.register("arrow_rows", pa.table(columns))
    con.execute(f"INSERT INTO {table} SELECT id::INTEGER, v::FLOAT[{DIM}], tag::INTEGER FROM arrow_rows")
    con.unregister("arrow_rows")


def make_table(con, metric, rows=ROWS, seed=5):
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}], tag INTEGER)")
    data = clustered(rows + 30, seed)
    load(con, "t", np.arange(rows), data[:rows])
    con.execute(f"CREATE INDEX idx ON t USING HNSW (v) WITH (metric = '{metric}')")
    con.execute(f"SET hnsw_ef_search = {rows + 1000}")
    # Queries near stored rows, not on them.
    return data[rows:] + np.float32(0.3) * np.random.default_rng(seed + 1).normal(size=(30, DIM)).astype(np.float32)


def both_plans(con, sql, params=()):
    """The index plan's rows (checking that it uses the index) and the exact plan's."""
    plan = con.execute("EXPLAIN " + sql, list(params)).fetchall()[0][1]
    assert "HNSW_INDEX_SCAN" in plan, plan
    got = con.execute(sql, list(params)).fetchall()
    con.execute("SET disabled_optimizers = 'extension'")
    try:
        want = con.execute(sql, list(params)).fetchall()
    finally:
        con.execute("RESET disabled_optimizers")
    return got, want


def top_k(metric, extra=""):
    return (f"SELECT id, v, {DISTANCES[metric]}(v, ?::FLOAT[{DIM}]) AS d FROM t {extra} "
            f"ORDER BY d LIMIT {K}")


def lateral(metric):
    return (f"SELECT q.qid, s.id, s.v, s.d FROM queries q, LATERAL (SELECT id, v, {DISTANCES[metric]}(v, q.qv) AS d "
            f"FROM t ORDER BY d LIMIT {K}) s ORDER BY q.qid, s.d, s.id")


def add_queries(con, queries):
    con.register("q_arrow", pa.table({"qid": np.arange(len(queries)),
                                      "qv": pa.FixedSizeListArray.from_arrays(pa.array(queries.ravel()), DIM)}))
    con.execute(f"CREATE OR REPLACE TABLE queries AS SELECT qid::INTEGER AS qid, qv::FLOAT[{DIM}] AS qv FROM q_arrow")
    con.unregister("q_arrow")


@pytest.mark.parametrize("metric", ["l2sq", "ip", "cosine"])
def test_vectors_and_distances_equal_the_exact_plans_bit_for_bit(connect, metric):
    # l2sq and ip read the vectors from the index; cosine (normalized in the index) from the table.
    con = connect()
    queries = make_table(con, metric)
    for q in queries[:10]:
        got, want = both_plans(con, top_k(metric), [q.tolist()])
        assert got == want
    add_queries(con, queries)
    got, want = both_plans(con, lateral(metric))
    assert len(got) == len(queries) * K
    assert got == want


def test_an_older_snapshot_reads_the_vectors_it_sees(connect, tmp_path):
    # Another connection updates (a new row id in DuckDB, a delete and an insert in the index)
    # and deletes the rows nearest to the queries after a reader's snapshot began: the reader
    # must get the old vectors, later snapshots the new ones.
    con = connect(tmp_path / "snap.duckdb")
    queries = make_table(con, "l2sq")
    reader, writer = con.cursor(), con.cursor()
    for c in (reader, writer):
        c.execute(f"SET hnsw_ef_search = {ROWS + 1000}")
    before = [both_plans(con, top_k("l2sq"), [q.tolist()])[1] for q in queries[:8]]
    nearest = sorted({row[0] for answer in before for row in answer[:3]})
    moved = sorted({row[0] for answer in before for row in answer[3:6]} - set(nearest))
    reader.execute("BEGIN TRANSACTION")
    assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == ROWS  # pins the snapshot
    writer.execute(f"DELETE FROM t WHERE id IN ({','.join(map(str, nearest))})")
    writer.execute(f"UPDATE t SET v = list_transform(v, lambda x: x * 0.5)::FLOAT[{DIM}] "
                   f"WHERE id IN ({','.join(map(str, moved))})")
    for i, q in enumerate(queries[:8]):
        got, want = both_plans(reader, top_k("l2sq"), [q.tolist()])
        assert got == want == before[i]
        got, want = both_plans(writer, top_k("l2sq"), [q.tolist()])
        assert got == want
        assert not {row[0] for row in got} & set(nearest)
    reader.execute("COMMIT")
    add_queries(writer, queries[:8])
    writer.execute("CHECKPOINT")
    got, want = both_plans(con, lateral("l2sq"))
    assert got == want


def test_rows_the_index_does_not_hold_are_read_from_the_table(connect):
    # A filtered query whose matching indexed rows are fewer than k: every matching row is a
    # candidate, NULL vectors included (not in the index), and this transaction's own new rows.
    con = connect()
    queries = make_table(con, "l2sq", rows=2000)
    con.execute(f"INSERT INTO t SELECT 5000 + i, NULL, 9 FROM range(5) r(i)")
    con.execute(f"UPDATE t SET tag = 9 WHERE id IN (3, 14, 15)")
    sql = top_k("l2sq", "WHERE tag = 9")
    for q in queries[:5]:
        got, want = both_plans(con, sql, [q.tolist()])
        assert len(got) == 8 == len(want)
        assert got == want
    con.execute("BEGIN TRANSACTION")
    load(con, "t", np.arange(6000, 6003), queries[:3], tags=np.full(3, 9))
    for q in queries[:5]:
        got, want = both_plans(con, sql, [q.tolist()])
        assert same_answer(got, want)
    con.execute("COMMIT")
    got, want = both_plans(con, sql, [queries[0].tolist()])
    assert same_answer(got, want) and got[0][0] == 6000


def same_answer(got, want, null_rows=range(5000, 5005)):
    """Equal rows in equal order, except that rows with a NULL distance (last) tie: any distinct
    ones of `null_rows`, as many."""
    ranked = [r for r in got if r[2] is not None]
    nulls = [r[0] for r in got[len(ranked):]]
    return ranked == [r for r in want if r[2] is not None] and len(got) == len(want) and \
        all(r[2] is None for r in got[len(ranked):]) and len(set(nulls)) == len(nulls) and set(nulls) <= set(null_rows)


@pytest.mark.parametrize("columns", ["rowid, v", "v, rowid, id", "v", "id, tag"])
def test_any_projection_of_the_row(connect, columns):
    # The vector's position among the fetched columns (before or after the row id), alone, or
    # only feeding the distance.
    con = connect()
    queries = make_table(con, "l2sq", rows=2000)
    sql = f"SELECT {columns} FROM t ORDER BY array_distance(v, ?::FLOAT[{DIM}]) LIMIT {K}"
    for q in queries[:5]:
        got, want = both_plans(con, sql, [q.tolist()])
        assert got == want


def test_reused_row_ids_and_a_reopened_file(connect, tmp_path):
    # An INSERT whose last chunk holds a NaN fails at commit after its first chunks reached the
    # index; DuckDB then gives their row ids to the next INSERT, with other vectors. Queries near
    # both the failed and the new vectors must see the new ones, also after a reopen.
    path = tmp_path / "reuse.duckdb"
    con = connect(path)
    queries = make_table(con, "l2sq", rows=1000)
    failed = clustered(3000, seed=98, spread=2.0)
    failed[-1, 0] = np.nan
    with pytest.raises(Exception, match="NaN"):
        load(con, "t", np.arange(5000, 8000), failed)
    fresh = clustered(3000, seed=99, spread=2.0)
    load(con, "t", np.arange(7000, 10000), fresh)
    assert con.execute("SELECT min(rowid) FROM t WHERE id >= 7000").fetchone()[0] == 1000  # reused
    near = list(queries[:3]) + list(failed[:3] + np.float32(0.01)) + list(fresh[:3] + np.float32(0.01))
    for q in near:
        got, want = both_plans(con, top_k("l2sq"), [q.tolist()])
        assert got == want
    con.close()
    again = connect(path)
    again.execute(f"SET hnsw_ef_search = {ROWS + 1000}")
    for q in near:
        got, want = both_plans(again, top_k("l2sq"), [q.tolist()])
        assert got == want


def test_many_batches_mixing_index_and_table_vectors(connect):
    # A filtered query with more matching rows than one fetch (2048) and fewer indexed ones than
    # k: every matching row is a candidate, NULL vectors spread among them.
    con = connect()
    queries = make_table(con, "l2sq", rows=3000)
    con.execute(f"UPDATE t SET v = NULL WHERE id % 97 = 0")
    sql = top_k("l2sq", "WHERE tag < 4").replace(f"LIMIT {K}", "LIMIT 3000")
    got, want = both_plans(con, sql, [queries[0].tolist()])
    nulls = {r[0] for r in want if r[2] is None}
    assert len(got) == len(want) == 2400 and len(nulls) == 25
    assert same_answer(got, want, null_rows=nulls)
