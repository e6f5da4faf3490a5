"""Filtered top-k through the index (WHERE <predicate> ORDER BY <distance> LIMIT k) against the
exact plan of the same statement, on seeded 20k x 384 clustered rows with an integer tag, the
row's cluster, a timestamp and a text column with NULLs: every selectivity from all rows to none,
filters that follow the query's cluster and filters that avoid it, after deletes and updates,
inside a transaction with uncommitted rows, with prepared parameters. Each query returns the
exact plan's row count, recall@10 >= 0.95 against it, and its plan uses the index."""
import json

import numpy as np
import pyarrow as pa
import pytest

DIM = 384
N = 20_000
CLUSTERS = 60
QUERIES = 20


def make_rows(seed=5):
    """Clustered vectors, tight and loose clusters alternating, and each row's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
    spread = np.where(np.arange(CLUSTERS) % 2 == 0, 0.15, 0.45).astype(np.float32)
    cluster = rng.integers(0, CLUSTERS, N)
    vectors = centres[cluster] + spread[cluster, None] * rng.normal(size=(N, DIM)).astype(np.float32)
    return vectors.astype(np.float32), cluster


VECTORS, CLUSTER = make_rows()


def load(con, vectors=VECTORS, cluster=CLUSTER, first=0, table="docs"):
    n = len(vectors)
    con.register("batch", pa.table({
        "id": np.arange(first, first + n),
        "cl": cluster,
        "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
    }))
    con.execute(f"""
        INSERT INTO {table}
        SELECT id, id % 1000, cl, TIMESTAMP '2026-01-01' + INTERVAL (id) MINUTE,
               CASE WHEN id % 7 = 0 THEN NULL ELSE 'doc ' || id END, v::FLOAT[{DIM}]
        FROM batch""")
    con.unregister("batch")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """One indexed table for the read-only tests (opened once: the build takes seconds)."""
    import duckdb

    from conftest import EXTENSION

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    con.execute(f"CREATE TABLE docs (id INTEGER, tag INTEGER, cl INTEGER, ts TIMESTAMP, txt VARCHAR, "
                f"v FLOAT[{DIM}])")
    load(con)
    con.execute("CREATE INDEX docs_v ON docs USING HNSW (v) WITH (metric = 'cosine')")
    yield con
    con.close()


def queries(seed=9, count=QUERIES):
    """Stored rows plus noise (not stored points), with the row's cluster."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(N, count, replace=False)
    noisy = VECTORS[rows] + 0.05 * rng.normal(size=(count, DIM)).astype(np.float32)
    return [(noisy[i].tolist(), int(CLUSTER[rows[i]])) for i in range(count)]


def uses_index(con, sql, params):
    plan = con.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchall()[0][1]
    return "HNSW_INDEX_SCAN" in json.dumps(json.loads(plan))


def exact(con, sql, params):
    # Late materialization off too: in DuckDB 2.0.0 it returns wrong rows (and can crash) inside a
    # transaction with uncommitted inserts, deletes and updates, even without this extension.
    con.execute("SET disabled_optimizers = 'extension,late_materialization'")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.execute("RESET disabled_optimizers")


def check(con, where, params_for=lambda cl: [], k=10, expect_index=True, min_recall=0.95, seed=9):
    """Runs `where` for every query; asserts row counts, distances and the plan; returns recall."""
    sql = (f"SELECT id, array_cosine_distance(v, ?::FLOAT[{DIM}]) AS d FROM docs WHERE {where} "
           f"ORDER BY d LIMIT {k}")
    total, counted = 0.0, 0
    for q, cl in queries(seed):
        params = [q] + params_for(cl)
        assert uses_index(con, sql, params) == expect_index, where
        got = con.execute(sql, params).fetchall()
        want = exact(con, sql, params)
        assert len(got) == len(want), (where, len(got), len(want))
        # Distances are the SQL function's values, in order.
        ids = {r[0]: r[1] for r in want}
        for row_id, d in got:
            if row_id in ids:
                assert d == pytest.approx(ids[row_id], abs=1e-6)
        distances = [r[1] for r in got]
        assert distances == sorted(distances, key=lambda d: (d is None, d or 0.0))  # NULLs last
        if want:
            total += len({r[0] for r in got} & set(ids)) / len(want)
            counted += 1
    recall = total / counted if counted else 1.0
    assert recall >= min_recall, (where, recall)
    return recall


@pytest.mark.parametrize("where", [
    "tag >= 0",                      # 100 %
    "tag < 500",                     # 50 %
    "tag < 100",                     # 10 %
    "tag < 10",                      # 1 %
    "tag = 7",                       # 0.1 %
    "id = 12345",                    # exactly one row
    "tag = 7 AND id = 8",            # no row (not provable from statistics)
])
def test_every_selectivity_returns_the_exact_row_count(db, where):
    check(db, where)


@pytest.mark.parametrize("where", [
    "txt LIKE 'doc 1%'",
    "txt IS NULL",
    "txt IS NOT NULL AND tag BETWEEN 100 AND 399",
    "tag IN (3, 77, 500, 901)",
    "NOT (tag < 900) OR id % 13 = 0",
    "lower(txt) LIKE '%7'",
    "ts > TIMESTAMP '2026-01-05' AND ts < TIMESTAMP '2026-01-09'",
    "tag < 300 AND cl % 3 = 1",
])
def test_predicate_shapes(db, where):
    check(db, where)


def test_filters_that_follow_the_query_cluster(db):
    check(db, "cl = ?", lambda cl: [cl])
    check(db, "cl = ? AND tag < 500", lambda cl: [cl])


@pytest.mark.parametrize("where", [
    "cl <> ?",                        # all but the query's cluster
    "cl % 2 <> ? % 2",                # half the clusters, never the query's
    "cl <> ? AND tag < 100",          # 10 %, far from the query
    "cl <> ? AND tag < 10",           # 1 %, far from the query
])
def test_filters_that_avoid_the_query_cluster(db, where):
    check(db, where, lambda cl: [cl] * where.count("?"))


def test_k_larger_than_the_matches_and_offset(db):
    check(db, "tag = 7", k=50)
    check(db, "tag < 100", k=200)
    sql = f"SELECT id FROM docs WHERE tag < 300 ORDER BY array_cosine_distance(v, ?::FLOAT[{DIM}]) LIMIT 5 OFFSET 5"
    q = queries()[0][0]
    assert uses_index(db, sql, [q])
    got = [r[0] for r in db.execute(sql, [q]).fetchall()]
    want = [r[0] for r in exact(db, sql, [q])]
    assert len(got) == 5 and len(set(got) & set(want)) >= 4


def test_prepared_parameters_in_the_predicate(db):
    for bound in (5, 50, 500):
        check(db, "tag < ? AND txt IS NOT NULL", lambda cl, b=bound: [b])


def test_volatile_predicate_keeps_the_exact_plan(db):
    sql = f"SELECT id FROM docs WHERE random() < 2 ORDER BY array_cosine_distance(v, ?::FLOAT[{DIM}]) LIMIT 10"
    assert not uses_index(db, sql, [queries()[0][0]])


def test_explain_analyze_shows_the_strategy_and_match_count(db):
    q = queries()[0][0]
    for where, strategy, matches in [("tag = 7", "exact", 20), ("tag < 500", "post_filter", 10_000)]:
        sql = f"SELECT id FROM docs WHERE {where} ORDER BY array_cosine_distance(v, ?::FLOAT[{DIM}]) LIMIT 10"
        plan = db.execute("EXPLAIN " + sql, [q]).fetchall()[0][1]
        assert "HNSW_INDEX_SCAN" in plan and "Filter" in plan, plan
        profile = db.execute("EXPLAIN ANALYZE " + sql, [q]).fetchall()[0][1]
        assert f"Strategy: {strategy}" in profile, profile
        assert f"Matching Rows: {matches}" in profile, profile


def test_settings_pick_the_strategy(db):
    q = queries()[0][0]
    sql = f"SELECT id FROM docs WHERE tag < 200 ORDER BY array_cosine_distance(v, ?::FLOAT[{DIM}]) LIMIT 10"
    for settings, strategy in [
        ("SET hnsw_filter_exact_max_matches = 100000", "exact"),
        ("SET hnsw_filter_exact_max_matches = 10; SET hnsw_filter_post_filter_selectivity = 0.9", "two_hop"),
        ("SET hnsw_filter_exact_max_matches = 10; SET hnsw_filter_post_filter_selectivity = 0.1", "post_filter"),
    ]:
        db.execute(settings)
        try:
            profile = db.execute("EXPLAIN ANALYZE " + sql, [q]).fetchall()[0][1]
            assert f"Strategy: {strategy}" in profile, (settings, profile)
            check(db, "tag < 200")
        finally:
            db.execute("RESET hnsw_filter_exact_max_matches; RESET hnsw_filter_post_filter_selectivity")
    for bad in ("SET hnsw_filter_exact_max_matches = -1", "SET hnsw_filter_post_filter_selectivity = 1.5"):
        with pytest.raises(Exception, match="hnsw_filter_"):
            db.execute(bad)


def fresh(connect):
    con = connect()
    con.execute(f"CREATE TABLE docs (id INTEGER, tag INTEGER, cl INTEGER, ts TIMESTAMP, txt VARCHAR, "
                f"v FLOAT[{DIM}])")
    load(con, VECTORS[:6000], CLUSTER[:6000])
    con.execute("CREATE INDEX docs_v ON docs USING HNSW (v) WITH (metric = 'cosine')")
    return con


def test_after_deletes_and_updates(connect):
    con = fresh(connect)
    con.execute("DELETE FROM docs WHERE id % 5 = 0")
    con.execute("UPDATE docs SET tag = 7 WHERE id % 97 = 1")                 # filter column only
    con.execute("UPDATE docs SET v = (v::FLOAT[384]) WHERE id % 89 = 2")     # the vector: re-indexed
    con.execute("UPDATE docs SET txt = NULL WHERE id % 11 = 3")
    for where in ("tag = 7", "tag < 100", "txt IS NULL AND tag < 500", "tag < 900"):
        check(con, where)


def test_uncommitted_rows_deletes_and_updates_are_seen(connect):
    con = fresh(connect)
    con.execute("BEGIN")
    # New rows exactly at the queries, tagged 7: they must come first.
    qs = queries()
    extra = np.array([q for q, _ in qs], dtype=np.float32)
    load(con, extra, np.zeros(len(qs), dtype=np.int64), first=1_000_007)
    con.execute("DELETE FROM docs WHERE id % 3 = 0 AND id < 1000000")
    con.execute("UPDATE docs SET tag = 7 WHERE id % 101 = 4")
    for where in ("tag = 7", "tag < 50", "txt IS NOT NULL"):
        check(con, where)
    sql = f"SELECT id FROM docs WHERE tag = 7 ORDER BY array_cosine_distance(v, ?::FLOAT[{DIM}]) LIMIT 1"
    for i, (q, _) in enumerate(qs):
        if (1_000_007 + i) % 1000 == 7:
            assert con.execute(sql, [q]).fetchall() == [(1_000_007 + i,)]
    con.execute("ROLLBACK")
    check(con, "tag = 7")


def test_rows_without_a_vector_fill_the_answer(connect):
    con = fresh(connect)
    con.execute(f"INSERT INTO docs VALUES (-1, 7, 0, NULL, 'no vector', NULL), (-2, 7, 0, NULL, NULL, NULL)")
    check(con, "tag = 7", k=20)   # 6 indexed rows match, plus the two without a vector (last)
    check(con, "txt = 'no vector'")


@pytest.mark.parametrize("bound_sql", [
    "array_cosine_distance(v, ?::FLOAT[384]) < {c}",
    "array_cosine_distance(v, ?::FLOAT[384]) <= {c} AND tag < 500",
    "{c} > array_cosine_distance(v, ?::FLOAT[384])",
])
def test_a_distance_bound_stops_the_search(db, bound_sql):
    """WHERE <distance>(v, q) < c: exactly the exact plan's rows (fewer than k when fewer lie
    within c); with at least k rows within c, found without reading every vector."""
    for q, _ in queries()[:8]:
        ranked = exact(db, f"SELECT array_cosine_distance(v, ?::FLOAT[{DIM}]) AS d FROM docs ORDER BY d LIMIT 40",
                       [q])
        for c in (ranked[3][0] + 1e-4, ranked[30][0] + 1e-4, 1e-9):
            where = bound_sql.format(c=repr(float(c)))
            sql = (f"SELECT id, array_cosine_distance(v, ?::FLOAT[{DIM}]) AS d FROM docs WHERE {where} "
                   f"ORDER BY d LIMIT 10")
            params = [q] * (1 + where.count("?"))
            assert uses_index(db, sql, params)
            got = db.execute(sql, params).fetchall()
            want = exact(db, sql, params)
            assert len(got) == len(want), (where, len(got), len(want))
            assert len({r[0] for r in got} & {r[0] for r in want}) >= 0.9 * len(want)
            if len(want) == 10 and "tag" not in where:
                # More than k rows in the ball: the bound stopped the walk, no pass over all rows.
                # (Fewer than k: the exact pass over the matches decides the count.)
                profile = db.execute("EXPLAIN ANALYZE " + sql, params).fetchall()[0][1]
                visited = int(profile.split("Visited: ")[1].split()[0])
                assert visited < N / 4, profile


def test_query_vector_from_a_subquery_or_cte_with_a_filter(db):
    total = 0.0
    rows = (5, 777, 4321, 15000, 19999)
    for row in rows:
        for sql in (
            f"SELECT id FROM docs WHERE tag < 300 ORDER BY "
            f"array_cosine_distance(v, (SELECT v FROM docs WHERE id = {row})) LIMIT 10",
            f"WITH q AS (SELECT v FROM docs WHERE id = {row}) SELECT d.id FROM docs d, q "
            f"WHERE d.tag < 300 ORDER BY array_cosine_distance(d.v, q.v) LIMIT 10",
        ):
            assert uses_index(db, sql, [])
            got = [r[0] for r in db.execute(sql).fetchall()]
            want = [r[0] for r in exact(db, sql, [])]
            assert len(got) == len(want) == 10
            total += len(set(got) & set(want)) / 10
    assert total / (2 * len(rows)) >= 0.95


def test_a_rounding_cast_is_an_ordinary_predicate(db):
    """`distance::DECIMAL(3,1) <= c` matches rows beyond c: it must not stop the search at c."""
    for q, _ in queries()[:5]:
        for where in (f"array_cosine_distance(v, ?::FLOAT[{DIM}])::DECIMAL(3,1) <= 0.1",
                      f"array_cosine_similarity(v, ?::FLOAT[{DIM}])::DECIMAL(2,1) >= 0.9"):
            sql = (f"SELECT id FROM docs WHERE {where} ORDER BY array_cosine_distance(v, ?::FLOAT[{DIM}]) "
                   f"LIMIT 50")
            assert uses_index(db, sql, [q, q])
            got, want = db.execute(sql, [q, q]).fetchall(), exact(db, sql, [q, q])
            assert len(got) == len(want)
            assert len(set(got) & set(want)) >= 0.95 * len(want)
