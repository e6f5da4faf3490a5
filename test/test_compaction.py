"""Deleted rows' nodes are reclaimed without being asked: a checkpoint compacts the graph once
they reach 10% of the live nodes, and VACUUM compacts at once. Answers stay equal to the exact
plan, and a long insert/delete churn keeps the index's stored pages bounded."""
import numpy as np
from vector_rows import index_and_exact, insert_random, vector_literal

DIM = 64


def add(con, lo, hi, rng):
    insert_random(con, lo, hi, DIM, rng)


def info(con):
    return con.execute("SELECT count, deleted, stored_pages FROM pragma_hnsw_index_info()").fetchall()[0]


def agrees_with_exact(con, rng):
    for _ in range(3):
        q = vector_literal(rng.normal(size=DIM), DIM)
        got, exact = index_and_exact(con, f"SELECT id FROM t ORDER BY array_distance(v, {q}) LIMIT 10")
        assert got == exact


def test_checkpoint_compacts_past_a_tenth_deleted_and_vacuum_at_once(connect, tmp_path):
    rng = np.random.default_rng(21)
    path = tmp_path / "compact.duckdb"
    con = connect(path)
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    add(con, 0, 5000, rng)
    con.execute("CREATE INDEX idx ON t USING HNSW (v)")
    con.execute("CHECKPOINT")
    # 2% deleted: a checkpoint leaves them (they are hidden from searches all the same).
    con.execute("DELETE FROM t WHERE id % 50 = 0")
    con.execute("CHECKPOINT")
    assert info(con)[:2] == (4900, 100)
    agrees_with_exact(con, rng)
    # VACUUM reclaims them now.
    con.execute("VACUUM t")
    assert info(con)[:2] == (4900, 0)
    agrees_with_exact(con, rng)
    # 12% more deleted: the next checkpoint compacts by itself.
    con.execute("DELETE FROM t WHERE id % 8 = 1")
    live = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
    con.execute("CHECKPOINT")
    assert info(con)[:2] == (live, 0)
    agrees_with_exact(con, rng)
    con.close()
    con = connect(path)
    assert info(con)[:2] == (live, 0)
    agrees_with_exact(con, rng)


def test_insert_delete_churn_keeps_the_index_bounded(connect, tmp_path):
    rng = np.random.default_rng(22)
    con = connect(tmp_path / "churn.duckdb")
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    add(con, 0, 4000, rng)
    con.execute("CREATE INDEX idx ON t USING HNSW (v)")
    con.execute("CHECKPOINT")
    first_pages = info(con)[2]
    # Replace the whole table twice over, 200 rows a round.
    for round in range(40):
        con.execute(f"DELETE FROM t WHERE id >= {round * 200} AND id < {(round + 1) * 200}")
        add(con, 4000 + round * 200, 4000 + (round + 1) * 200, rng)
        con.execute("CHECKPOINT")
        count, deleted, pages = info(con)
        assert count == 4000
        assert deleted * 10 < count, (round, deleted)
        assert pages <= first_pages * 1.25, (round, pages, first_pages)
    agrees_with_exact(con, rng)
