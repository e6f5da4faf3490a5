"""A CHECKPOINT after deleting (nearly) every row of an indexed table keeps the database usable.

Found by the kill -9 suite (scripts/reliability/kill9.py, whose first workload emptied a small
table): with artifacts built on 2026-12-01 before 05:08, deleting 97 of 100 rows (or all 100, or
2,990 of 3,000) and then CHECKPOINT raised `FATAL Error: Failed to create checkpoint because of
error: Attempting to get the index of an optional_idx that is not set`, and every later
session's checkpoint failed the same way."""
import duckdb
import pytest

DIM = 8


@pytest.mark.parametrize("rows, delete", [(100, "id < 97"), (100, "true"), (3000, "id < 2990")])
def test_checkpoint_after_deleting_almost_every_row(connect, tmp_path, rows, delete):
    path = tmp_path / "mass_delete.duckdb"
    con = connect(path)
    con.execute(f"CREATE TABLE t AS SELECT i::INTEGER AS id, [random()::FLOAT for x in range({DIM})]::FLOAT[{DIM}] "
                f"AS v FROM range({rows}) r(i)")
    con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    con.execute(f"DELETE FROM t WHERE {delete}")
    left = con.execute("SELECT count(*) FROM t").fetchone()[0]
    try:
        con.execute("CHECKPOINT")
    except duckdb.FatalException as ex:
        pytest.fail(f"CHECKPOINT after deleting down to {left} of {rows} rows: {ex}")
    con.close()
    con = connect(path)
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == left
    assert con.execute("SELECT count FROM pragma_hnsw_index_info()").fetchone()[0] == left
    con.execute("CHECKPOINT")
