"""The rewritten ORDER BY ... LIMIT against the exact plan (the same query with the extension's
optimizer disabled), on realistic dimensions and every way of passing the query vector."""
import json

import pytest

from test_index_search import CLUSTERED, literal, query_vector
from vector_rows import exact_plan as exact


def rewritten(con, sql, params=None):
    plan = con.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchall()[0][1]
    return "HNSW_INDEX_SCAN" in json.dumps(json.loads(plan))


def test_recall_at_10_on_10k_x_384_clustered_through_sql(connect):
    con = connect()
    con.execute(CLUSTERED.format(dim=384, n=10_000, seed=11))
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    sql = "SELECT id FROM items ORDER BY array_distance(v, ?::FLOAT[384]) LIMIT 10"
    total, queries = 0.0, 40
    for i in range(queries):
        q = list(query_vector(con, 2_000_000 + i, 384))
        assert rewritten(con, sql, [q])
        got = {r[0] for r in con.execute(sql, [q]).fetchall()}
        want = {r[0] for r in exact(con, sql, [q])}
        assert len(got) == 10
        total += len(got & want) / 10
    assert total / queries >= 0.95, total / queries


def test_exact_match_queries_return_exact_results(connect):
    con = connect()
    con.execute(CLUSTERED.format(dim=128, n=4_000, seed=12))
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    for row in (0, 17, 999, 3999):
        sql = (f"SELECT id, title, array_distance(v, (SELECT v FROM items WHERE id = {row})) AS d FROM "
               "(SELECT *, 'item ' || id AS title FROM items) ORDER BY d LIMIT 1")
        assert con.execute(sql).fetchall() == exact(con, sql)
        q = literal(con.execute(f"SELECT v FROM items WHERE id = {row}").fetchone()[0], 128)
        sql = f"SELECT id, array_distance(v, {q}) AS d FROM items ORDER BY d LIMIT 1"
        assert rewritten(con, sql)
        assert con.execute(sql).fetchall() == [(row, 0.0)]


@pytest.mark.parametrize("k,offset", [(1, 0), (10, 0), (10, 5), (70, 0), (200, 30)])
def test_limit_offset_and_k_above_ef_search(connect, k, offset):
    con = connect()
    con.execute(CLUSTERED.format(dim=64, n=5_000, seed=13))
    con.execute("CREATE INDEX idx ON items USING HNSW (v) WITH (ef_search = 16)")
    q = literal(query_vector(con, 31337, 64), 64)
    sql = f"SELECT id, array_distance(v, {q}) AS d FROM items ORDER BY d LIMIT {k} OFFSET {offset}"
    assert rewritten(con, sql)
    got = con.execute(sql).fetchall()
    want = exact(con, sql)
    assert len(got) == len(want) == k  # never fewer rows than the exact plan
    # Distances are the SQL function's values: sorted, and equal where the rows agree.
    assert [d for _, d in got] == sorted(d for _, d in got)
    overlap = len({i for i, _ in got} & {i for i, _ in want}) / k
    assert overlap >= 0.9, overlap


def test_prepared_statement_executed_repeatedly(connect):
    con = connect()
    con.execute(CLUSTERED.format(dim=128, n=3_000, seed=14))
    con.execute("CREATE INDEX idx ON items USING HNSW (v) WITH (metric = 'cosine')")
    sql = "SELECT id FROM items ORDER BY array_cosine_distance(v, $1::FLOAT[128]) LIMIT 1"
    for row in range(0, 3_000, 150):
        q = con.execute(f"SELECT v FROM items WHERE id = {row}").fetchone()[0]
        assert con.execute(sql, [list(q)]).fetchall() == [(row,)]
    assert rewritten(con, sql, [list(q)])


def test_small_table_returns_every_row_when_k_exceeds_it(connect):
    con = connect()
    con.execute(CLUSTERED.format(dim=32, n=40, seed=15))
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    q = literal(query_vector(con, 5, 32), 32)
    sql = f"SELECT id FROM items ORDER BY array_distance(v, {q}) LIMIT 50"
    assert rewritten(con, sql)
    assert sorted(con.execute(sql).fetchall()) == sorted(exact(con, sql))


def test_scalar_subquery_and_cte_query_vectors(connect):
    con = connect()
    con.execute(CLUSTERED.format(dim=128, n=4_000, seed=16))
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    con.execute("CREATE TABLE probes AS SELECT id AS probe, v AS pv FROM items WHERE id % 400 = 7")
    for row in (7, 1207, 3607):
        forms = [
            f"SELECT id, array_distance(v, (SELECT pv FROM probes WHERE probe = {row})) AS d FROM items "
            "ORDER BY d LIMIT 5",
            f"WITH q AS (SELECT pv FROM probes WHERE probe = {row}) "
            "SELECT id, array_distance(v, (SELECT pv FROM q)) AS d FROM items ORDER BY d LIMIT 5",
        ]
        for sql in forms:
            assert rewritten(con, sql), sql
            got = con.execute(sql).fetchall()
            assert got[0] == (row, 0.0)
            want = exact(con, sql)
            assert len(got) == len(want) == 5
            assert len({r[0] for r in got} & {r[0] for r in want}) >= 4
    # A subquery that yields NULL: every row has a NULL distance, as in the exact plan.
    sql = "SELECT id FROM items ORDER BY array_distance(v, (SELECT pv FROM probes WHERE probe = -1)), id LIMIT 3"
    assert con.execute(sql).fetchall() == exact(con, sql)
    sql = "SELECT id FROM items ORDER BY array_distance(v, (SELECT pv FROM probes WHERE probe = -1)) LIMIT 3"
    assert len(con.execute(sql).fetchall()) == 3


def test_rows_committed_after_the_snapshot_do_not_shorten_results(extension_path, tmp_path):
    # Two connections to one database: B commits many rows right next to the query after A's
    # transaction started. They enter the index but A cannot see them; A still gets k rows, as its
    # exact plan would.
    import duckdb

    db = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    db.execute(f"LOAD '{extension_path}'")
    db.execute(CLUSTERED.format(dim=32, n=3_000, seed=17))
    db.execute("CREATE INDEX idx ON items USING HNSW (v)")
    a, b = db.cursor(), db.cursor()
    q = literal(query_vector(db, 4242, 32), 32)
    sql = f"SELECT id FROM items ORDER BY array_distance(v, {q}) LIMIT 20"
    a.execute("BEGIN")
    before = a.execute(sql).fetchall()
    b.execute(f"INSERT INTO items SELECT 100000 + i, {q} FROM range(200) r(i)")
    assert len(b.execute(sql).fetchall()) == 20  # B sees its rows (all at distance 0)
    assert {r[0] for r in b.execute(sql).fetchall()} <= set(range(100000, 100200))
    after = a.execute(sql).fetchall()
    assert rewritten(a, sql)
    assert len(after) == 20
    assert after == before
    a.execute("COMMIT")
    db.close()
