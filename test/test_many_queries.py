"""Many queries in one statement against the exact plan, on seeded 10k x 384 clustered rows:
LATERAL top-k joins (and the correlated ARRAY subquery DuckDB plans the same way), min_by /
arg_min / max_by with k, grouped per query and ungrouped. Every shape's plan uses the index;
queries that are stored rows find themselves first; recall@10 >= 0.95 against exact search;
NULL query vectors, an empty or duplicated outer table, k beyond the table, a dropped index and
1 vs 2 threads all give what the exact plan gives."""
import json

import numpy as np
import pyarrow as pa
import pytest
from vector_rows import exact_plan as exact

DIM = 384
N = 10_000
CLUSTERS = 40
K = 10


def make(seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
    cluster = rng.integers(0, CLUSTERS, N)
    spread = np.where(np.arange(CLUSTERS) % 2 == 0, 0.15, 0.45).astype(np.float32)
    data = (centres[cluster] + spread[cluster, None] * rng.normal(size=(N, DIM))).astype(np.float32)
    # 60 queries: 30 stored rows (exact matches) and 30 stored rows plus noise.
    rows = rng.choice(N, 60, replace=False)
    queries = data[rows].copy()
    queries[30:] += 0.05 * rng.normal(size=(30, DIM)).astype(np.float32)
    return data, queries, rows


DATA, QUERIES, QUERY_ROWS = make()


def vectors(values):
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(values, dtype=np.float32).ravel()), DIM)


@pytest.fixture(scope="module")
def db():
    import duckdb

    from conftest import EXTENSION

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    con.register("d", pa.table({"id": np.arange(N), "v": vectors(DATA)}))
    con.execute(f"CREATE TABLE items AS SELECT id::INTEGER AS id, id % 7 AS tag, v::FLOAT[{DIM}] AS v FROM d")
    con.register("q", pa.table({"qid": np.arange(len(QUERIES)), "row": QUERY_ROWS, "qv": vectors(QUERIES)}))
    con.execute(f"CREATE TABLE queries AS SELECT qid::INTEGER AS qid, row::INTEGER AS row, qv::FLOAT[{DIM}] AS qv FROM q")
    con.execute("CREATE INDEX items_l2 ON items USING HNSW (v)")
    yield con
    con.close()


def uses_index(con, sql):
    plan = con.execute("EXPLAIN (FORMAT JSON) " + sql).fetchall()[0][1]
    return "HNSW_INDEX_SCAN" in json.dumps(json.loads(plan))


def per_query(rows):
    """{qid: [ids]} from (qid, id) rows in distance order."""
    out = {}
    for qid, row_id in rows:
        out.setdefault(qid, []).append(row_id)
    return out


def check_per_query(con, sql, k=K):
    """The statement's (qid, id) rows, nearest first per qid, against the exact plan."""
    assert uses_index(con, sql), sql
    got, want = per_query(con.execute(sql).fetchall()), per_query(exact(con, sql))
    assert got.keys() == want.keys()
    recall = np.mean([len(set(got[q]) & set(want[q])) / len(want[q]) for q in want])
    assert recall >= 0.95, recall
    for qid in range(30):  # exact-match queries find their own row first
        assert got[qid][0] == QUERY_ROWS[qid]
    assert all(len(got[q]) == len(want[q]) == k for q in want)
    return recall


LATERAL = (f"SELECT q.qid, t.id FROM queries q, LATERAL (SELECT id, array_distance(v, q.qv) AS d FROM items "
           f"ORDER BY d LIMIT {K}) t ORDER BY q.qid, t.d")


def test_lateral_join(db):
    check_per_query(db, LATERAL)


def test_lateral_join_with_columns_of_both_sides_and_the_distance(db):
    sql = (f"SELECT q.qid, q.row, t.id, t.tag, t.d FROM queries q, LATERAL (SELECT id, tag, "
           f"array_distance(v, q.qv) AS d FROM items ORDER BY d LIMIT 3) t ORDER BY q.qid, t.d")
    assert uses_index(db, sql)
    got = db.execute(sql).fetchall()
    assert len(got) == 3 * len(QUERIES)
    exact_rows = {(r[0], r[2]): r for r in exact(db, sql)}
    for row in got[:90]:  # the exact-match queries: the same rows, tags and distances
        assert exact_rows[(row[0], row[2])] == pytest.approx(row)


def test_correlated_array_subquery(db):
    sql = (f"SELECT qid, ARRAY(SELECT id FROM items ORDER BY array_distance(items.v, queries.qv) LIMIT {K}) "
           f"FROM queries ORDER BY qid")
    assert uses_index(db, sql)
    got, want = dict(db.execute(sql).fetchall()), dict(exact(db, sql))
    assert np.mean([len(set(got[q]) & set(want[q])) / K for q in want]) >= 0.95
    assert all(got[q][0] == QUERY_ROWS[q] for q in range(30))


@pytest.mark.parametrize("aggregate", ["min_by", "arg_min"])
def test_min_by_grouped_per_query(db, aggregate):
    sql = f"SELECT qid, {aggregate}(id, array_distance(v, qv), {K}) FROM queries, items GROUP BY qid"
    assert uses_index(db, sql)
    got, want = dict(db.execute(sql).fetchall()), dict(exact(db, sql))
    assert np.mean([len(set(got[q]) & set(want[q])) / K for q in want]) >= 0.95
    assert all(got[q][0] == QUERY_ROWS[q] for q in range(30))


def test_min_by_ungrouped_and_top_1(db):
    q = "[" + ",".join(f"{x:.7f}" for x in QUERIES[40]) + f"]::FLOAT[{DIM}]"
    for sql in (f"SELECT min_by(id, array_distance(v, {q}), {K}) FROM items",
                f"SELECT min_by(id, array_distance(v, {q})) FROM items",
                f"SELECT min_by(id, array_distance(v, {q}), {K}) FROM items WHERE tag < 3"):
        assert uses_index(db, sql), sql
        got, want = db.execute(sql).fetchone()[0], exact(db, sql)[0][0]
        if isinstance(want, list):
            assert len(got) == len(want) and len(set(got) & set(want)) >= 0.9 * len(want)
        else:
            assert got == want


def test_max_by_similarity_and_one_minus_cosine_similarity(db):
    db.execute("CREATE INDEX items_cos ON items USING HNSW (v) WITH (metric = 'cosine')")
    try:
        for sql in (
            f"SELECT qid, max_by(id, array_cosine_similarity(v, qv), {K}) FROM queries, items GROUP BY qid",
            f"SELECT qid, min_by(id, 1 - array_cosine_similarity(v, qv), {K}) FROM queries, items GROUP BY qid",
        ):
            assert uses_index(db, sql), sql
            got, want = dict(db.execute(sql).fetchall()), dict(exact(db, sql))
            assert np.mean([len(set(got[q]) & set(want[q])) / K for q in want]) >= 0.95
        sql = (f"SELECT q.qid, t.id FROM queries q, LATERAL (SELECT id FROM items "
               f"ORDER BY 1 - array_cosine_similarity(v, q.qv) LIMIT {K}) t ORDER BY q.qid")
        assert uses_index(db, sql)
    finally:
        db.execute("DROP INDEX items_cos")


def test_null_empty_and_duplicate_outer_rows(db):
    db.execute("CREATE TEMP TABLE odd AS SELECT qid, qv FROM queries WHERE qid < 3 "
               "UNION ALL SELECT qid, qv FROM queries WHERE qid < 3 "          # duplicates
               f"UNION ALL SELECT 99, NULL::FLOAT[{DIM}]")                        # a NULL vector
    db.execute("CREATE TEMP TABLE none AS SELECT * FROM queries WHERE false")
    try:
        for outer in ("odd", "none"):
            sql = (f"SELECT q.qid, t.id FROM {outer} q, LATERAL (SELECT id, array_distance(v, q.qv) AS d "
                   f"FROM items ORDER BY d LIMIT 5) t")
            assert uses_index(db, sql)
            got, want = db.execute(sql).fetchall(), exact(db, sql)
            assert len(got) == len(want)
            # Rows with a vector: the same ids as the exact plan (duplicates answered alike).
            assert sorted(r for r in got if r[0] != 99) == sorted(r for r in want if r[0] != 99)
    finally:
        db.execute("DROP TABLE odd; DROP TABLE none")


def test_k_beyond_the_table_and_a_large_k(connect):
    con = connect()
    rng = np.random.default_rng(5)
    small = rng.normal(size=(50, 16)).astype(np.float32)
    con.register("s", pa.table({"id": np.arange(50), "v": pa.FixedSizeListArray.from_arrays(pa.array(small.ravel()), 16)}))
    con.execute("CREATE TABLE items AS SELECT id::INTEGER AS id, v::FLOAT[16] AS v FROM s")
    con.execute("CREATE TABLE queries AS SELECT id AS qid, v AS qv FROM items WHERE id < 5")
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    sql = ("SELECT q.qid, t.id FROM queries q, LATERAL (SELECT id, array_distance(v, q.qv) AS d FROM items "
           "ORDER BY d LIMIT 80) t")
    assert uses_index(con, sql)
    assert sorted(con.execute(sql).fetchall()) == sorted(exact(con, sql))   # every row, per query


def test_k_up_to_5000(db):
    sql = ("SELECT q.qid, count(*) FROM (SELECT * FROM queries LIMIT 2) q, LATERAL (SELECT id, "
           "array_distance(v, q.qv) AS d FROM items ORDER BY d LIMIT 5000) t GROUP BY q.qid")
    assert uses_index(db, sql)
    assert sorted(db.execute(sql).fetchall()) == sorted(exact(db, sql))


def test_dropped_index_gives_the_exact_plan_again(connect):
    con = connect()
    con.execute("CREATE TABLE items AS SELECT i AS id, [i % 13, i % 7, i % 5]::FLOAT[3] AS v FROM range(500) r(i)")
    con.execute("CREATE TABLE queries AS SELECT i AS qid, [i, 1, 2]::FLOAT[3] AS qv FROM range(4) r(i)")
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    sql = "SELECT qid, min_by(id, array_distance(v, qv), 3) FROM queries, items GROUP BY qid"
    assert uses_index(con, sql)
    con.execute("DROP INDEX idx")
    assert not uses_index(con, sql)
    assert sorted(con.execute(sql).fetchall()) == sorted(exact(con, sql))


def test_same_answers_with_one_and_two_threads(db):
    answers = []
    for threads in (1, 2):
        db.execute(f"SET threads = {threads}")
        answers.append(sorted(db.execute(LATERAL).fetchall()))
    db.execute("RESET threads")
    assert answers[0] == answers[1]


def test_recall_of_a_query_table_in_one_statement(db):
    """README's recipe: recall@10 of every query, index against exact, in one SQL statement."""
    sql = f"""
        WITH found AS (
            SELECT q.qid, list(t.id) AS ids FROM queries q,
                LATERAL (SELECT id FROM items ORDER BY array_distance(v, q.qv) LIMIT {K}) t GROUP BY q.qid),
        truth AS (
            SELECT q.qid, list(t.id) AS ids FROM queries q,
                LATERAL (SELECT id FROM items ORDER BY array_distance(v, q.qv), id LIMIT {K}) t GROUP BY q.qid)
        SELECT avg(len(list_intersect(found.ids, truth.ids)) / {K}) FROM found JOIN truth USING (qid)"""
    truth = (f"SELECT q.qid, t.id FROM queries q, LATERAL (SELECT id FROM items "
             f"ORDER BY array_distance(v, q.qv), id LIMIT {K}) t")
    assert not uses_index(db, truth)  # a second sort key keeps the exact plan: the oracle
    recall = db.execute(sql).fetchone()[0]
    assert recall >= 0.95
    assert recall == pytest.approx(check_per_query(db, LATERAL), abs=1e-9)


def test_vss_join_and_vss_match(db):
    join = f"SELECT * FROM vss_join(queries, items, qv, v, {K})"
    match = f"SELECT qid, matches FROM queries, vss_match(items, qv, v, {K})"
    for sql in (join, match):
        assert uses_index(db, sql), sql
    # vss's result shape: (score, left_tbl, right_tbl) per match; one list of {score, row} per row.
    columns = [d[0] for d in db.execute(join).description]
    assert columns == ["score", "left_tbl", "right_tbl"]
    got = db.execute(join).fetchall()
    want = exact(db, join)
    assert len(got) == len(want) == K * len(QUERIES)
    ids = lambda rows: {(r[1]["qid"], r[2]["id"]) for r in rows}  # noqa: E731
    assert len(ids(got) & ids(want)) / len(want) >= 0.95
    for score, left, right in got:  # score is the l2 distance of the pair
        if left["qid"] < 30 and right["id"] == left["row"]:
            assert score == 0.0
    matched = dict(db.execute(match).fetchall())
    exact_matched = dict(exact(db, match))
    recall = np.mean([len({m["row"]["id"] for m in matched[q]} & {m["row"]["id"] for m in exact_matched[q]}) / K
                      for q in exact_matched])
    assert recall >= 0.95
    assert all(matched[q][0]["row"]["id"] == QUERY_ROWS[q] and matched[q][0]["score"] == 0.0 for q in range(30))
    # The vector columns may share a name.
    db.execute("CREATE TEMP TABLE lq AS SELECT qid, qv AS v FROM queries")
    try:
        same = f"SELECT left_tbl.qid, right_tbl.id FROM vss_join(lq, items, v, v, {K})"
        assert uses_index(db, same)
        got = set(db.execute(same).fetchall())
        assert len(got & set(exact(db, same))) / (K * len(QUERIES)) >= 0.95
    finally:
        db.execute("DROP TABLE lq")
    # Cosine: scores are similarities, best first; no cosine index here, so the exact plan answers.
    cosine = f"SELECT * FROM vss_join(queries, items, qv, v, 3, metric := 'cosine')"
    assert not uses_index(db, cosine)
    rows = db.execute(cosine).fetchall()
    assert len(rows) == 3 * len(QUERIES)
    with pytest.raises(Exception, match="unknown metric 'hamming'"):
        db.execute(f"SELECT * FROM vss_join(queries, items, qv, v, 3, metric := 'hamming')").fetchall()


def test_lateral_join_with_a_filter_on_the_table(db):
    """A WHERE clause over the searched table inside the LATERAL: a filtered search per outer row."""
    sql = (f"SELECT q.qid, t.id FROM queries q, LATERAL (SELECT id, array_distance(v, q.qv) AS d FROM items "
           f"WHERE tag < 3 ORDER BY d LIMIT {K}) t")
    assert uses_index(db, sql)
    got, want = per_query(db.execute(sql).fetchall()), per_query(exact(db, sql))
    assert got.keys() == want.keys()
    assert all(len(got[q]) == len(want[q]) == K for q in want)
    tags = dict(db.execute("SELECT id, tag FROM items").fetchall())
    assert all(tags[i] < 3 for ids in got.values() for i in ids)
    assert np.mean([len(set(got[q]) & set(want[q])) / K for q in want]) >= 0.95
