"""Shared test helpers: random vector rows inserted through Arrow, and an index answer checked
against the exact plan of the same query."""
import numpy as np
import pyarrow as pa


def insert_random(con, lo, hi, dim, rng, table="t"):
    """Inserts rows id lo..hi-1 with standard-normal FLOAT[dim] vectors into (id INTEGER, v)."""
    vectors = rng.normal(size=(hi - lo, dim)).astype(np.float32)
    con.register("batch", pa.table({"id": np.arange(lo, hi),
                                    "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)}))
    con.execute(f"INSERT INTO {table} SELECT id::INTEGER, v::FLOAT[{dim}] FROM batch")
    con.unregister("batch")


def vector_literal(values, dim):
    return "[" + ",".join(f"{x:.6f}" for x in values) + f"]::FLOAT[{dim}]"


def index_and_exact(con, sql, ef=10_000):
    """The rows of `sql` through the index (its plan must use it, with ef above the row count so
    any difference is a lost or extra row, not recall) and through the exact plan."""
    con.execute(f"SET hnsw_ef_search = {ef}")
    plan = con.execute("EXPLAIN " + sql).fetchall()[0][1]
    assert "HNSW_INDEX_SCAN" in plan, plan
    got = con.execute(sql).fetchall()
    con.execute("PRAGMA disable_optimizer")
    exact = con.execute(sql).fetchall()
    con.execute("PRAGMA enable_optimizer")
    return got, exact


def exact_plan(con, sql, params=None):
    """The rows of `sql` through DuckDB's own plan, with the extension's optimizer rules off."""
    con.execute("SET disabled_optimizers = 'extension'")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.execute("RESET disabled_optimizers")
