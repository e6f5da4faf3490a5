"""The LATERAL top-k join as one scan (hnsw_optimize_lateral_topk.cpp): on DuckDB 2.0 the
decorrelated join (DISTINCT on the query vector, top-k aggregate, UNNEST, hash join back on the
vector) becomes one in-out index scan that ranks each outer row's candidates with the query's own
SQL distance. With ef_search above the table size the searches find every row, so the answers
must equal the exact plan's row for row, distances included; ties are broken the same way on any
number of threads."""
import json

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from vector_rows import exact_plan as exact

DIM = 8
N = 600
FUSED = duckdb.__version__.startswith("2.")  # DuckDB 1.5 plans LATERAL through DELIM_JOIN


def vectors(values):
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values, dtype=np.float32).ravel()), DIM)


@pytest.fixture
def db(connect):
    con = connect()
    rng = np.random.default_rng(11)
    data = rng.normal(size=(N, DIM)).astype(np.float32)
    data[N - 20:] = data[:20]  # 20 exact duplicates: ties at every distance
    con.register("d", pa.table({"id": np.arange(N), "v": vectors(data)}))
    con.execute(f"CREATE TABLE items AS SELECT id::INTEGER AS id, id % 5 AS tag, v::FLOAT[{DIM}] AS v FROM d")
    con.execute(f"INSERT INTO items VALUES ({N}, 0, NULL)")  # a row without a vector
    queries = np.concatenate([data[:10], rng.normal(size=(10, DIM)).astype(np.float32)])
    con.register("q", pa.table({"qid": np.arange(len(queries)), "qv": vectors(queries)}))
    con.execute(f"CREATE TABLE queries AS SELECT qid::INTEGER AS qid, 'q' || qid AS name, qv::FLOAT[{DIM}] AS qv FROM q")
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    con.execute("SET hnsw_ef_search = 2000")
    return con


def plan(con, sql):
    return json.dumps(json.loads(con.execute("EXPLAIN (FORMAT JSON) " + sql).fetchall()[0][1]))


def lateral(outer="queries", k=10, select="q.qid, t.id, t.d", distance="array_distance(v, q.qv)", order="d",
            where=""):
    return (f"SELECT {select} FROM {outer} q, LATERAL (SELECT id, tag, {distance} AS d FROM items {where} "
            f"ORDER BY {order} LIMIT {k}) t")


def check_equal(con, sql):
    """The statement uses the index, as one scan on DuckDB 2.0, and returns the exact plan's rows."""
    text = plan(con, sql)
    assert "HNSW_INDEX_SCAN" in text, sql
    if FUSED:
        for operator in ("HASH_JOIN", "HASH_GROUP_BY", "UNNEST"):
            assert operator not in text, (operator, sql)
    got = sorted(con.execute(sql).fetchall(), key=repr)
    want = sorted(exact(con, sql), key=repr)
    assert got == want
    return got


def test_rows_and_distances_equal_the_exact_plan(db):
    rows = check_equal(db, lateral())
    assert len(rows) == 20 * 10
    # The distance is the SQL function's value: an exact-match query finds its row at 0.
    assert all(d == 0.0 for qid, row_id, d in rows if row_id == qid < 10)


def test_columns_of_both_sides_in_any_order(db):
    check_equal(db, lateral(select="t.d, q.name, t.tag, q.qid, t.id, q.qv"))
    check_equal(db, lateral(select="q.qid, t.id"))
    # The vector itself in the answer (otherwise only the distance reads it).
    check_equal(db, "SELECT q.qid, t.v, t.id FROM queries q, LATERAL (SELECT id, v FROM items "
                    "ORDER BY array_distance(v, q.qv) LIMIT 4) t")


def test_ties_give_the_same_rows_on_one_and_two_threads(db):
    # Query 0..9 are stored rows with a duplicate each: two rows at distance 0, k = 1 keeps one.
    answers = []
    for threads in (1, 2):
        db.execute(f"SET threads = {threads}")
        answers.append(sorted(db.execute(lateral(k=1)).fetchall()))
    db.execute("RESET threads")
    assert answers[0] == answers[1]
    assert len(answers[0]) == 20


def test_null_empty_and_duplicate_outer_rows(db):
    db.execute("CREATE TEMP TABLE odd AS SELECT * FROM queries WHERE qid < 3 UNION ALL "
               f"SELECT * FROM queries WHERE qid < 3 UNION ALL SELECT 99, 'null', NULL::FLOAT[{DIM}]")
    db.execute("CREATE TEMP TABLE none AS SELECT * FROM queries WHERE false")
    sql = lateral(outer="odd", k=5)
    assert "HNSW_INDEX_SCAN" in plan(db, sql)
    got, want = db.execute(sql).fetchall(), exact(db, sql)
    assert len(got) == len(want) == 7 * 5
    assert sorted(r for r in got if r[0] != 99) == sorted(r for r in want if r[0] != 99)
    assert all(r[2] is None for r in got if r[0] == 99)  # a NULL query: k rows, NULL distances
    assert check_equal(db, lateral(outer="none")) == []


def test_k_beyond_the_table(connect):
    con = connect()
    con.execute("CREATE TABLE items AS SELECT i AS id, i % 5 AS tag, [i % 7, i % 3, 1]::FLOAT[3] AS v "
                "FROM range(40) r(i)")
    con.execute("INSERT INTO items VALUES (40, 0, NULL)")
    con.execute("CREATE TABLE queries AS SELECT i AS qid, [i, 1, 2]::FLOAT[3] AS qv FROM range(4) r(i)")
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    sql = lateral(k=80, select="q.qid, t.id, t.d")
    assert "HNSW_INDEX_SCAN" in plan(con, sql)
    got, want = con.execute(sql).fetchall(), exact(con, sql)
    assert len(got) == len(want) == 4 * 41  # every row, the one without a vector last
    assert sorted(got, key=repr) == sorted(want, key=repr)  # (ties: equal distances, same multiset)


def test_more_candidates_than_a_chunk(db):
    # k = 3000 > 2048 rows per chunk: the answer is fetched again by row id.
    sql = lateral(outer="(SELECT * FROM queries LIMIT 3)", k=3000, select="q.qid, count(*), sum(t.d)") + \
        " GROUP BY q.qid"
    assert "HNSW_INDEX_SCAN" in plan(db, sql)
    got, want = sorted(db.execute(sql).fetchall()), sorted(exact(db, sql))
    assert [g[:2] for g in got] == [w[:2] for w in want] == [(q, N + 1) for q in range(3)]
    assert all(g[2] == pytest.approx(w[2]) for g, w in zip(got, want))


def test_uncommitted_rows_are_seen(db):
    db.execute("BEGIN")
    try:
        db.execute(f"INSERT INTO items SELECT 1000 + qid, 0, qv FROM queries WHERE qid >= 10")
        db.execute("DELETE FROM items WHERE id = 3")
        rows = check_equal(db, lateral(k=3))
        assert {(q, 1000 + q) for q in range(10, 20)} <= {(r[0], r[1]) for r in rows}
        assert all(r[1] != 3 for r in rows)
    finally:
        db.execute("ROLLBACK")


def test_similarity_descending_and_one_minus_cosine(db):
    db.execute("CREATE INDEX idx_cos ON items USING HNSW (v) WITH (metric = 'cosine')")
    check_equal(db, lateral(distance="array_cosine_similarity(v, q.qv)", order="d DESC"))
    check_equal(db, lateral(distance="1 - array_cosine_similarity(v, q.qv)"))


def test_filtered_lateral_still_answers(db):
    sql = lateral(where="WHERE tag < 2")
    assert "HNSW_INDEX_SCAN" in plan(db, sql)
    got, want = sorted(db.execute(sql).fetchall(), key=repr), sorted(exact(db, sql), key=repr)
    assert got == want


def test_dropped_index_gives_the_exact_plan_again(db):
    sql = lateral()
    assert "HNSW_INDEX_SCAN" in plan(db, sql)
    before = sorted(db.execute(sql).fetchall(), key=repr)
    db.execute("DROP INDEX idx")
    assert "HNSW_INDEX_SCAN" not in plan(db, sql)
    assert sorted(db.execute(sql).fetchall(), key=repr) == before
