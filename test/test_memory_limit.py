"""The index's memory under DuckDB's memory_limit: counted in duckdb_memory() (tag EXTENSION), a
CREATE INDEX or an INSERT that would not fit fails in its own statement with an out-of-memory
error and leaves the database usable, a stored index too large to load refuses queries and writes
(each in its statement) but never checkpoints, and a checkpoint under a tight limit never dies of the index's pages."""
import duckdb
import numpy as np
import pytest
from vector_rows import index_and_exact, insert_random, vector_literal

DIM = 384
ROWS = 20_000


def extension_bytes(con):
    """Bytes DuckDB's buffer pool counts under the tag the index reserves its memory with."""
    rows = con.execute("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'EXTENSION'").fetchall()
    return rows[0][0] if rows else 0


def index_bytes(con):
    return con.execute("SELECT approx_memory_usage FROM pragma_hnsw_index_info()").fetchall()[0][0]


def nearest_match_exact(con, rng, queries=3):
    for _ in range(queries):
        query = vector_literal(rng.normal(size=DIM), DIM)
        got, exact = index_and_exact(con, f"SELECT id FROM t ORDER BY array_distance(v, {query}) LIMIT 10")
        assert got == exact


def make_table(con, rng, rows=ROWS):
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    insert_random(con, 0, rows, DIM, rng)


def test_the_index_memory_is_counted_by_duckdb_and_returned_at_drop(connect):
    rng = np.random.default_rng(1)
    con = connect()  # in memory: the graph is the index's only memory
    make_table(con, rng)
    assert extension_bytes(con) == 0
    con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    graph = index_bytes(con)
    assert graph > ROWS * DIM * 4
    assert extension_bytes(con) == graph
    # Inserts and deletes are counted as they change the graph.
    insert_random(con, ROWS, ROWS + 3_000, DIM, rng)
    con.execute("DELETE FROM t WHERE id % 7 = 0")
    con.execute("PRAGMA hnsw_compact_index('t_v')")
    assert extension_bytes(con) == index_bytes(con)
    # A second index adds its own.
    con.execute("CREATE INDEX t_v2 ON t USING HNSW (v) WITH (metric = 'cosine')")
    total = con.execute("SELECT sum(approx_memory_usage) FROM pragma_hnsw_index_info()").fetchall()[0][0]
    assert extension_bytes(con) == total
    con.execute("DROP INDEX t_v")
    con.execute("DROP INDEX t_v2")
    assert extension_bytes(con) == 0


def test_create_index_beyond_the_limit_fails_cleanly_and_the_database_stays_usable(connect, tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "limit.duckdb"
    con = connect(path)
    make_table(con, rng)
    con.execute("CHECKPOINT")
    con.execute("SET memory_limit = '20MB'")
    with pytest.raises(duckdb.OutOfMemoryException, match=r'HNSW index "t_v": building it for 20000 rows.*memory_limit'):
        con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchall() == [(0,)]
    assert extension_bytes(con) == 0
    # Reads, writes and checkpoints go on as before.
    insert_random(con, ROWS, ROWS + 100, DIM, rng)
    con.execute("DELETE FROM t WHERE id < 50")
    con.execute("CHECKPOINT")
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(ROWS + 50,)]
    # With room, the same statement works and answers as exact search does.
    con.execute("SET memory_limit = '1GB'")
    con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    nearest_match_exact(con, rng)
    con.close()
    con = connect(path)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(ROWS + 50,)]
    nearest_match_exact(con, rng)


def test_an_insert_that_would_not_fit_fails_in_its_statement(connect, tmp_path):
    rng = np.random.default_rng(3)
    con = connect(tmp_path / "inserts.duckdb")
    make_table(con, rng, rows=5_000)
    con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    con.execute("CHECKPOINT")
    before = extension_bytes(con)
    limit = before + (16 << 20)
    con.execute(f"SET memory_limit = '{limit}B'")
    # 30k more rows need ~50 MB of index: refused by the statement, before its commit.
    con.execute(f"CREATE TABLE more AS SELECT (range + 100000)::INTEGER AS id, v FROM t, range(6)")
    with pytest.raises(duckdb.OutOfMemoryException, match=r'HNSW index "t_v": adding this statement.*rows'):
        con.execute("INSERT INTO t SELECT * FROM more")
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(5_000,)]
    assert extension_bytes(con) == before
    # A transaction's smaller statements go through, and the index keeps up with them.
    con.execute("BEGIN")
    insert_random(con, 5_000, 5_500, DIM, rng)
    insert_random(con, 5_500, 6_000, DIM, rng)
    con.execute("COMMIT")
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(6_000,)]
    assert extension_bytes(con) > before
    con.execute("CHECKPOINT")
    nearest_match_exact(con, rng)


def test_a_stored_index_too_large_to_load_refuses_queries_and_writes_but_not_checkpoints(extension_path, tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "reopen.duckdb"
    config = {"allow_unsigned_extensions": "true"}
    con = duckdb.connect(str(path), config=config)
    con.execute(f"LOAD '{extension_path}'")
    make_table(con, rng)
    con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    con.close()

    con = duckdb.connect(str(path), config={**config, "memory_limit": "20MB"})
    con.execute(f"LOAD '{extension_path}'")
    query = vector_literal(rng.normal(size=DIM), DIM)
    search = f"SELECT id FROM t ORDER BY array_distance(v, {query}) LIMIT 10"
    with pytest.raises(duckdb.OutOfMemoryException, match=r'HNSW index "t_v": loading its stored image'):
        con.execute(search).fetchall()
    with pytest.raises(duckdb.OutOfMemoryException, match="loading its stored image"):
        insert_random(con, ROWS, ROWS + 10, DIM, rng)
    # A delete reaches the index at commit, which must not fail: the statement loads it first.
    with pytest.raises(duckdb.OutOfMemoryException, match="loading its stored image"):
        con.execute("DELETE FROM t WHERE id < 100")
    # Plain reads and checkpoints do not need the graph.
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(ROWS,)]
    con.execute("CHECKPOINT")
    assert extension_bytes(con) == 0
    # With room, everything works again, in the same session.
    con.execute("SET memory_limit = '1GB'")
    con.execute("DELETE FROM t WHERE id < 100")
    # Counted: the graph's bytes (the index's size also counts page buffers DuckDB holds).
    assert 0.9 * index_bytes(con) <= extension_bytes(con) <= index_bytes(con)
    con.close()

    con = duckdb.connect(str(path), config=config)
    con.execute(f"LOAD '{extension_path}'")
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(ROWS - 100,)]
    nearest_match_exact(con, rng)


def test_a_checkpoint_under_a_tight_limit_writes_the_index(extension_path, tmp_path):
    # The fatal case: the index's pages are written while memory_limit is already full.
    rng = np.random.default_rng(5)
    path = tmp_path / "tight.duckdb"
    config = {"allow_unsigned_extensions": "true"}
    con = duckdb.connect(str(path), config=config)
    con.execute(f"LOAD '{extension_path}'")
    make_table(con, rng)
    con.execute("CHECKPOINT")
    con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    insert_random(con, ROWS, ROWS + 500, DIM, rng)
    # 2 MB above the graph: the checkpoint's 34 MB of index pages fit only because the graph's
    # reservation makes room for them (without that, this checkpoint was FATAL).
    con.execute(f"SET memory_limit = '{extension_bytes(con) + (2 << 20)}B'")
    con.execute("CHECKPOINT")
    con.close()

    con = duckdb.connect(str(path), config=config)
    con.execute(f"LOAD '{extension_path}'")
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(ROWS + 500,)]
    assert con.execute("SELECT unusable_reason FROM pragma_hnsw_index_info()").fetchall() == [(None,)]
    nearest_match_exact(con, rng)
