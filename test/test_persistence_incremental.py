"""Checkpoints after small changes rewrite few index pages (pragma_hnsw_index_info reports them),
and the database file stops growing under repeated insert/delete/checkpoint rounds."""
import numpy as np
import pyarrow as pa

DIM = 128


def add(con, lo, hi, rng):
    vectors = rng.normal(size=(hi - lo, DIM)).astype(np.float32)
    con.register("batch", pa.table({"id": np.arange(lo, hi),
                                    "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)}))
    con.execute(f"INSERT INTO t SELECT id::INTEGER, v::FLOAT[{DIM}] FROM batch")
    con.unregister("batch")


def pages(con):
    return con.execute("SELECT stored_pages, pages_written FROM pragma_hnsw_index_info()").fetchall()[0]


def test_small_changes_rewrite_few_pages_and_free_blocks_are_reused(connect, tmp_path):
    rng = np.random.default_rng(3)
    con = connect(tmp_path / "inc.duckdb")
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    add(con, 0, 20_000, rng)
    con.execute("CREATE INDEX idx ON t USING HNSW (v)")
    con.execute("CHECKPOINT")
    stored, _ = pages(con)
    assert stored > 20
    totals = []
    for round in range(12):
        add(con, 20_000 + round * 50, 20_000 + (round + 1) * 50, rng)
        con.execute(f"DELETE FROM t WHERE id = {round * 7}")
        con.execute("CHECKPOINT")
        stored, written = pages(con)
        assert 0 < written * 3 < stored, (round, written, stored)
        totals.append(con.execute("SELECT total_blocks FROM pragma_database_size()").fetchall()[0][0])
    # Freed blocks are reused: the file stops growing (DuckDB alternates between two layouts of
    # the table's last row group, which it rewrites at each checkpoint).
    assert max(totals[6:]) <= max(totals[:6]) + 4, totals
