"""hnsw_benchmark, hnsw_tune, hnsw_sample_queries, PRAGMA hnsw_set_ef_search and
hnsw_index_health, checked against NumPy: the recall column equals the overlap of the index's own
answers (hnsw_search at that ef) with NumPy's exact top-k; the tuned ef reaches the target when
measured independently; the stored ef_search survives reopen and the session setting overrides
it; health counts equal what the test did (deletes, compaction)."""
import numpy as np
import pyarrow as pa
import pytest

import duckdb
from vector_rows import index_and_exact

DIM = 384
ROWS = 4000
K = 10


def hard_vectors(rng, n):
    """Clusters from tight (0.05) to loose (1.0) around 40 centres, in one array."""
    centres = rng.normal(size=(40, DIM)) * 2
    spread = np.linspace(0.05, 1.0, 40)
    labels = rng.integers(0, 40, size=n)
    return (centres[labels] + rng.normal(size=(n, DIM)) * spread[labels, None]).astype(np.float32)


def arrow_vectors(vectors, name="v"):
    return pa.table({name: pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])})


@pytest.fixture
def indexed(connect, tmp_path):
    """A file database with t(id, v FLOAT[384]) = hard_vectors, an HNSW index idx (l2sq), and
    100 queries that are not stored points in table queries(v)."""
    rng = np.random.default_rng(5)
    data = hard_vectors(rng, ROWS)
    queries = data[rng.choice(ROWS, 100, replace=False)] + rng.normal(size=(100, DIM)).astype(np.float32) * 0.3
    path = tmp_path / "bench.duckdb"
    con = connect(path)
    con.register("data_arrow", pa.table({"id": np.arange(ROWS), "v": arrow_vectors(data).column("v")}))
    con.execute(f"CREATE TABLE t AS SELECT id::BIGINT AS id, v::FLOAT[{DIM}] AS v FROM data_arrow")
    con.register("query_arrow", arrow_vectors(queries))
    con.execute(f"CREATE TABLE queries AS SELECT v::FLOAT[{DIM}] AS v FROM query_arrow")
    con.execute("CREATE INDEX idx ON t USING HNSW (v) WITH (M = 8, ef_construction = 32)")
    return con, path, data, queries


def exact_top_k(data, queries, k=K):
    """NumPy's exact l2 top-k row ids (float64)."""
    d = ((queries.astype(np.float64)[:, None, :] - data.astype(np.float64)[None, :, :]) ** 2).sum(axis=2)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def index_answers(con, queries, ef):
    """The index's own top-K row ids for each query at this ef (hnsw_search = the graph search)."""
    answers = []
    for q in queries:
        rows = con.execute("SELECT row_id FROM hnsw_search('idx', ?::FLOAT[384], ?, ef := ?)",
                           [q.tolist(), K, ef]).fetchall()
        answers.append([r[0] for r in rows])
    return answers


def recall(answers, truth):
    return float(np.mean([len(set(a) & set(t.tolist())) / len(t) for a, t in zip(answers, truth)]))


def test_benchmark_recall_equals_the_numpy_oracle(indexed):
    con, _, data, queries = indexed
    rows = con.execute("SELECT ef, recall, distances_per_query, p50_ms, p99_ms, qps, queries, k, truth_ms "
                       "FROM hnsw_benchmark('idx', (SELECT v FROM queries), k := 10, ef := [40, 10, 20, 160])"
                       ).fetchall()
    assert [r[0] for r in rows] == [10, 20, 40, 160]  # sorted, each measured once
    truth = exact_top_k(data, queries)
    # The row ids of the table are its insertion order here: id == rowid.
    for ef, got, distances, p50, p99, qps, count, k, truth_ms in rows:
        assert got == pytest.approx(recall(index_answers(con, queries, ef), truth), abs=1e-9), ef
        assert (count, k) == (100, 10)
        assert 0 < p50 <= p99 and qps > 0 and distances > 0 and truth_ms > 0
    assert rows[0][1] < rows[-1][1] and rows[-1][1] > 0.95  # hard enough data to separate the efs
    assert rows[0][2] < rows[-1][2]  # more ef, more distance computations
    assert len({r[8] for r in rows}) == 1  # the ground truth is computed once per call


def test_benchmark_takes_any_query_source(indexed):
    con, _, data, queries = indexed
    # A DOUBLE list column, a query with a WHERE, and the default ef grid.
    listed = con.execute("SELECT ef, recall FROM hnsw_benchmark('idx', (SELECT v::DOUBLE[] FROM queries))").fetchall()
    arrays = con.execute("SELECT ef, recall FROM hnsw_benchmark('idx', (FROM queries))").fetchall()
    assert [r[0] for r in arrays] == [16, 32, 64, 128, 256]
    assert listed == pytest.approx(arrays)
    half = con.execute("SELECT queries FROM hnsw_benchmark('idx', (SELECT v FROM queries LIMIT 50), ef := [32])"
                       ).fetchall()
    assert half == [(50,)]
    # An empty query set measures nothing.
    assert con.execute("FROM hnsw_benchmark('idx', (SELECT v FROM queries WHERE false))").fetchall() == []


def test_sample_queries_are_near_stored_rows_but_not_on_them(indexed):
    con, _, data, _ = indexed
    sampled = con.execute("SELECT query FROM hnsw_sample_queries('idx', 300, seed := 3)").fetchall()
    assert len(sampled) == 300
    q = np.array([row[0] for row in sampled], dtype=np.float64)
    d = ((q[:, None, :] - data.astype(np.float64)[None, :, :]) ** 2).sum(axis=2)
    nearest = np.sort(d, axis=1)[:, :2]
    assert (nearest[:, 0] > 0).all()  # not a stored point
    # a quarter of the way toward a neighbour: closer to its own row than to that neighbour
    assert (nearest[:, 0] < nearest[:, 1]).all()
    again = con.execute("SELECT query FROM hnsw_sample_queries('idx', 300, seed := 3)").fetchall()
    assert again == sampled  # seeded
    assert len(con.execute("FROM hnsw_sample_queries('idx')").fetchall()) == 1000


def test_tuned_ef_reaches_the_target_measured_independently(indexed):
    con, _, data, _ = indexed
    con.execute("CREATE TABLE sampled AS SELECT query FROM hnsw_sample_queries('idx', 200)")
    curve = con.execute("SELECT ef, recall, chosen FROM hnsw_tune('idx', (FROM sampled), target_recall := 0.97) "
                        "ORDER BY ef").fetchall()
    chosen = [ef for ef, _, is_chosen in curve if is_chosen]
    assert len(chosen) == 1
    ef = chosen[0]
    queries = np.array([r[0] for r in con.execute("SELECT query FROM sampled").fetchall()], dtype=np.float32)
    truth = exact_top_k(data, queries)
    assert recall(index_answers(con, queries, ef), truth) >= 0.97
    # Every measured ef below the chosen one missed the target, and none is below k.
    assert all(r < 0.97 for e, r, _ in curve if e < ef)
    assert min(e for e, _, _ in curve) >= K
    # The same through SQL on the user's own queries.
    mine = con.execute("SELECT ef FROM hnsw_tune('idx', (SELECT v FROM queries), target_recall := 0.9) "
                       "WHERE chosen").fetchall()
    assert len(mine) == 1


def test_stored_ef_search_survives_reopen_and_the_setting_overrides_it(indexed, connect):
    con, path, _, queries = indexed
    con.execute("PRAGMA hnsw_set_ef_search('idx', 10)")
    assert con.execute("SELECT ef_search FROM pragma_hnsw_index_info()").fetchall() == [(10,)]
    con.close()
    for _ in range(2):  # reopen, and reopen again after a session that changed nothing
        con = connect(path)
        assert con.execute("SELECT ef_search FROM pragma_hnsw_index_info()").fetchall() == [(10,)]

        def default_answers():
            return [[r[0] for r in con.execute("SELECT row_id FROM hnsw_search('idx', ?::FLOAT[384], 10)",
                                               [q.tolist()]).fetchall()] for q in queries[:40]]

        at_10, at_400 = index_answers(con, queries[:40], 10), index_answers(con, queries[:40], 400)
        assert at_10 != at_400  # the two efs are told apart on this data
        assert default_answers() == at_10
        con.execute("SET hnsw_ef_search = 400")
        assert default_answers() == at_400
        con.close()


def test_set_ef_search_errors(indexed):
    con, _, _, _ = indexed
    with pytest.raises(duckdb.InvalidInputException, match="ef_search must be between 1 and 100000, not 0"):
        con.execute("PRAGMA hnsw_set_ef_search('idx', 0)")
    with pytest.raises(duckdb.CatalogException, match='HNSW index "nope" does not exist'):
        con.execute("PRAGMA hnsw_set_ef_search('nope', 40)")
    with pytest.raises(duckdb.InvalidInputException, match="got NULL"):
        con.execute("PRAGMA hnsw_set_ef_search('idx', NULL)")
    assert con.execute("SELECT ef_search FROM pragma_hnsw_index_info()").fetchall() == [(64,)]


@pytest.mark.parametrize("sql, error, message", [
    ("FROM hnsw_benchmark('idx', (SELECT 1))", duckdb.BinderException, "expects query vectors of type FLOAT.384., not INTEGER"),
    ("FROM hnsw_benchmark('idx', (SELECT v, v FROM queries))", duckdb.BinderException, "must return one column"),
    ("FROM hnsw_benchmark('nope', (FROM queries))", duckdb.CatalogException, 'HNSW index "nope" does not exist'),
    ("FROM hnsw_benchmark('idx', (FROM queries), ef := [5])", duckdb.BinderException, "ef 5 is below k 10"),
    ("FROM hnsw_benchmark('idx', (FROM queries), ef := [])", duckdb.BinderException, "ef is an empty list"),
    ("FROM hnsw_benchmark('idx', (FROM queries), k := 0)", duckdb.BinderException, "k must be between 1 and 10000, not 0"),
    ("FROM hnsw_benchmark('idx', (SELECT NULL::FLOAT[384] UNION ALL FROM queries))", duckdb.InvalidInputException,
     "query row 1 is NULL"),
    ("FROM hnsw_benchmark('idx', (SELECT [1, 2, 3]))", duckdb.InvalidInputException,
     "query row 1 has 3 dimensions; the index has 384"),
    ("FROM hnsw_tune('idx', (FROM queries), target_recall := 1.5)", duckdb.BinderException,
     "target_recall must be above 0 and at most 1, not 1.5"),
    ("FROM hnsw_tune('idx')", duckdb.BinderException, "requires a subquery"),
    ("FROM hnsw_sample_queries('idx', 0)", duckdb.BinderException, "number of queries must be between 1 and 100000"),
    ("FROM hnsw_index_health('nope')", duckdb.CatalogException, 'HNSW index "nope" does not exist'),
])
def test_bad_input_is_a_clear_error(indexed, sql, error, message):
    con, _, _, _ = indexed
    with pytest.raises(error, match=message):
        con.execute(sql).fetchall()


def health(con):
    cursor = con.execute("FROM hnsw_index_health('idx')")
    return dict(zip([d[0] for d in cursor.description], cursor.fetchall()[0]))


def test_health_counts_what_the_test_did(indexed):
    con, _, _, _ = indexed
    h = health(con)
    assert (h["live"], h["deleted"], h["retired"], h["free_slots"]) == (ROWS, 0, 0, 0)
    assert h["unreachable"] == 0 and h["warning"] is None
    layers = h["layers"]
    assert layers[0]["nodes"] == ROWS and layers[0]["capacity"] == 16 and layers[1]["capacity"] == 8
    assert [layer["layer"] for layer in layers] == list(range(len(layers)))
    assert all(a["nodes"] >= b["nodes"] for a, b in zip(layers, layers[1:]))
    for layer in layers:
        assert 0 <= layer["degree_min"] <= layer["degree_mean"] <= layer["degree_max"] <= layer["capacity"]
    assert layers[0]["degree_min"] >= 1  # everyone has a neighbour on layer 0
    assert h["vector_bytes"] == ROWS * DIM * 4
    info_bytes = con.execute("SELECT approx_memory_usage FROM pragma_hnsw_index_info()").fetchall()[0][0]
    assert h["vector_bytes"] + h["link_bytes"] + h["label_bytes"] <= info_bytes

    # A quarter deleted: retired until the checkpoint purges them, then past the compaction share.
    con.execute("DELETE FROM t WHERE id % 4 = 0")
    h = health(con)
    assert (h["live"], h["retired"]) == (ROWS * 3 // 4, ROWS // 4)
    assert h["retired_share"] == pytest.approx(0.25)
    con.execute("SET threads = 1")  # keep the checkpoint from compacting on its own: below, by the pragma
    con.execute("PRAGMA hnsw_compact_index('idx')")
    h = health(con)
    assert (h["live"], h["deleted"], h["retired"], h["free_slots"]) == (ROWS * 3 // 4, 0, 0, ROWS // 4)
    assert h["layers"][0]["nodes"] == ROWS * 3 // 4 and h["warning"] is None

    # Most rows deleted and compacted: only a rebuild gives the slots back.
    con.execute("DELETE FROM t WHERE id % 4 <> 1")
    con.execute("PRAGMA hnsw_compact_index('idx')")
    h = health(con)
    assert (h["live"], h["free_slots"]) == (ROWS // 4, ROWS * 3 // 4)
    assert "DROP INDEX and CREATE INDEX" in h["warning"]


def test_health_warns_about_deleted_rows_waiting_for_compaction(indexed):
    con, _, _, _ = indexed
    con.execute("DELETE FROM t WHERE id % 5 = 0")
    con.execute("INSERT INTO t SELECT id + 100000, v FROM t WHERE id = 1")  # a writer purges the retired rows
    h = health(con)
    assert (h["deleted"], h["retired"]) == (ROWS // 5, 0)
    assert h["deleted_share"] == pytest.approx((ROWS // 5) / (ROWS + 1))
    assert "PRAGMA hnsw_compact_index('idx')" in h["warning"]


def test_health_of_an_unusable_index_says_how_to_recover(connect, tmp_path):
    path = tmp_path / "damaged.duckdb"
    con = connect(path)
    con.execute("CREATE TABLE t AS SELECT i AS id, [i, i % 7, i % 13]::FLOAT[3] AS v FROM range(2000) r(i)")
    con.execute("CREATE INDEX idx ON t USING HNSW (v)")
    con.execute("CHECKPOINT")
    con.close()
    raw = bytearray(path.read_bytes())
    start = raw.find(b"DKHNSWP\x1a")  # the image's first page: a flipped header byte fails its checksum
    assert start > 0
    raw[start + 8] ^= 0x5A
    path.write_bytes(raw)
    con = connect(path)
    h = health(con)
    assert h["live"] is None and h["layers"] is None
    assert "cannot be used" in h["warning"] and "DROP INDEX and CREATE INDEX" in h["warning"]
    con.execute("DROP INDEX idx")
    con.execute("CREATE INDEX idx ON t USING HNSW (v)")
    assert health(con)["live"] == 2000 and health(con)["warning"] is None


def test_lowercase_index_type_is_found_after_reopen(connect, tmp_path):
    # CREATE INDEX keeps the spelling "hnsw"; the index must be bound and used after a reopen
    # before any write, as with "HNSW".
    path = tmp_path / "lower.duckdb"
    con = connect(path)
    con.execute("CREATE TABLE t AS SELECT i AS id, [i, i % 7, i % 13]::FLOAT[3] AS v FROM range(5000) r(i)")
    con.execute("CREATE INDEX idx ON t using hnsw (v)")
    con.close()
    con = connect(path)
    assert con.execute("SELECT index_name, count FROM pragma_hnsw_index_info()").fetchall() == [("idx", 5000)]
    got, exact = index_and_exact(con, "SELECT id FROM t ORDER BY array_distance(v, [10, 3, 10]::FLOAT[3]) LIMIT 3")
    assert got == exact
