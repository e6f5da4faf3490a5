"""A vector the index cannot take (NaN, infinity, a zero vector under cosine) fails the statement
that writes it, not the COMMIT of its transaction: INSERT ... VALUES, prepared parameters,
INSERT ... SELECT, COPY FROM and UPDATE alike. Checked against the table afterwards (nothing of
the failing statement lands; the good statements' rows do) and the index (count equals the rows
with a vector)."""
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import duckdb

DIM = 8


@pytest.fixture
def table(connect, tmp_path):
    con = connect(tmp_path / "checks.duckdb")
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    con.execute(f"INSERT INTO t SELECT i, list_transform(range({DIM}), lambda j: (i + j + 1)::FLOAT)::FLOAT[{DIM}] "
                "FROM range(200) r(i)")
    con.execute("CREATE INDEX idx ON t USING HNSW (v) WITH (metric = 'cosine')")
    return con


def state(con):
    rows, with_vector = con.execute("SELECT count(*), count(v) FROM t").fetchone()
    indexed = con.execute("SELECT count FROM pragma_hnsw_index_info()").fetchone()[0]
    assert indexed == with_vector  # the index holds exactly the rows with a vector
    return rows


def vec(*head):
    values = list(head) + [1.0] * (DIM - len(head))
    return "[" + ", ".join(f"'{x}'::FLOAT" if isinstance(x, str) else str(x) for x in values) + f"]::FLOAT[{DIM}]"


@pytest.mark.parametrize("sql, params, message", [
    (f"INSERT INTO t VALUES (1000, {vec('nan')})", None, "vector component 0 is NaN"),
    (f"INSERT INTO t VALUES (1000, {vec(1, 'inf')})", None, "vector component 1 is inf"),
    (f"INSERT INTO t VALUES (1000, {vec(*[0] * DIM)})", None, "length zero"),
    ("INSERT INTO t VALUES (?, ?)", [1000, [math.nan] + [1.0] * (DIM - 1)], "component 0 is NaN"),
    (f"INSERT INTO t (v, id) VALUES ({vec(1, 2, 'nan')}, 1000)", None, "component 2 is NaN"),
    # many rows, the bad one in the second vector of 2048
    (f"INSERT INTO t SELECT 5000 + i, CASE WHEN i = 3000 THEN {vec(1, 1, 1, '-inf')} ELSE {vec(2)} END "
     "FROM range(4000) r(i)", None, "component 3 is -inf"),
    (f"UPDATE t SET v = {vec(*[0] * DIM)} WHERE id = 5", None, "length zero"),
    (f"UPDATE t SET v = list_transform(v, lambda x: x / 0)::FLOAT[{DIM}] WHERE id < 3", None, "is inf"),
])
def test_the_statement_fails_and_writes_nothing(table, sql, params, message):
    before = state(table)
    with pytest.raises(duckdb.InvalidInputException, match=f'HNSW index "idx", a written row: .*{message}'):
        table.execute(sql, params)
    assert state(table) == before
    # The next statements work as usual.
    table.execute(f"INSERT INTO t VALUES (9999, {vec(3)})")
    assert state(table) == before + 1


def test_copy_from_a_file_with_a_bad_vector(table, tmp_path):
    good = np.ones((5, DIM), dtype=np.float32)
    bad = good.copy()
    bad[3, 4] = np.nan
    for name, vectors in (("good", good), ("bad", bad)):
        pq.write_table(pa.table({"id": np.arange(5, dtype=np.int32),
                                 "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)}),
                       tmp_path / f"{name}.parquet")
    with pytest.raises(duckdb.InvalidInputException, match="component 4 is NaN"):
        table.execute(f"COPY t FROM '{tmp_path / 'bad.parquet'}'")
    assert state(table) == 200
    table.execute(f"COPY t FROM '{tmp_path / 'good.parquet'}'")
    assert state(table) == 205


def test_in_a_transaction_the_error_comes_from_the_statement(table):
    # DuckDB aborts a transaction on any error in it (as for a failed CHECK constraint): the bad
    # statement fails at once, naming the problem, and COMMIT then keeps nothing.
    table.execute("BEGIN")
    table.execute(f"INSERT INTO t VALUES (1000, {vec(5)})")
    with pytest.raises(duckdb.InvalidInputException, match="component 0 is NaN"):
        table.execute(f"INSERT INTO t VALUES (1001, {vec('nan')})")
    with pytest.raises(duckdb.TransactionException, match="aborted"):
        table.execute(f"INSERT INTO t VALUES (1002, {vec(6)})")
    table.execute("ROLLBACK")
    assert state(table) == 200
    # Only good statements: all of them commit.
    table.execute("BEGIN")
    table.execute(f"INSERT INTO t VALUES (1000, {vec(5)})")
    table.execute(f"UPDATE t SET v = {vec(7)} WHERE id = 1")
    table.execute("COMMIT")
    assert state(table) == 201


def test_what_the_metric_accepts_passes(connect):
    # NULL vectors are not indexed; l2sq and ip take the zero vector; tables without an HNSW index
    # get no check in their plan.
    con = connect()
    con.execute(f"CREATE TABLE a (v FLOAT[{DIM}])")
    con.execute(f"CREATE TABLE plain (v FLOAT[{DIM}])")
    con.execute("CREATE INDEX a_v ON a USING HNSW (v) WITH (metric = 'ip')")
    con.execute(f"INSERT INTO a VALUES ({vec(*[0] * DIM)}), (NULL), ({vec(2)})")
    assert con.execute("SELECT count FROM pragma_hnsw_index_info()").fetchone()[0] == 2
    plan = con.execute(f"EXPLAIN INSERT INTO plain VALUES ({vec(2)})").fetchall()[0][1]
    assert "hnsw_check_vector" not in plan
    plan = con.execute(f"EXPLAIN INSERT INTO a VALUES ({vec(2)})").fetchall()[0][1]
    assert "hnsw_check_vector" in plan
