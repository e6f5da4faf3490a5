"""Bulk loading of embeddings into a FLOAT[n] column, and a benchmark of the ways to do it.

Load a file into a table (created if missing, with the embedding column as FLOAT[n]):

    .venv/bin/python -m scripts.load.bulk_load learning.duckdb items vectors.npy      # NumPy (n_rows, n)
    .venv/bin/python -m scripts.load.bulk_load learning.duckdb items data.parquet     # list column
    .venv/bin/python -m scripts.load.bulk_load learning.duckdb items data.csv         # '[0.1, ...]' text
        [--column embedding] [--id-column id] [--extension PATH]

A .npy file becomes (id BIGINT, embedding FLOAT[n]) rows, ids counting from the table's current
size; Parquet and CSV keep their columns and only the embedding column is cast. Every row's
length is checked first: a file with other dimensions than the table is refused with both
numbers, before anything is inserted.

Measure rows/s of every path (NumPy via Arrow, Parquet, CSV, .npy helper, the extension's
read_npy / read_fvecs table functions, row-by-row inserts with a list parameter; the last also on
DuckDB 1.5.5 from .venv-vss if present):

    .venv/bin/python -m scripts.load.bulk_load --bench [--rows N] [--dim N] [--extension PATH]
"""
import argparse
import json
import pathlib
import re
import sys
import tempfile
import time

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from scripts.common import (EXTENSION, VSS_PYTHON, connect, gaussian, insert_vectors, one_row_insert_ms,
                            sql_identifier, sql_string, timed, vector_array, worker_json)

NPY_CHUNK = 100_000


class LoadError(Exception):
    """A file that cannot be loaded into the table as asked."""


def table_dimensions(con, table, column):
    """n of the table's FLOAT[n] column, or None if the table does not exist."""
    # Unquoted SQL names are case-insensitive; this tool quotes them, so match them the same way.
    rows = con.execute("SELECT data_type FROM duckdb_columns() WHERE lower(table_name) = lower(?) "
                       "AND lower(column_name) = lower(?)", [table, column]).fetchall()
    if not rows:
        exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE lower(table_name) = lower(?)",
                             [table]).fetchall()[0][0]
        if exists:
            raise LoadError(f"table {table} has no column {column}")
        return None
    data_type = rows[0][0]
    fixed = re.fullmatch(r"FLOAT\[(\d+)\]", data_type)
    if not fixed:
        raise LoadError(f"column {table}.{column} is {data_type}, expected FLOAT[n]")
    return int(fixed.group(1))


def check_lengths(con, source, column, expected):
    """Refuses a source whose embeddings are not all `expected` long (or NULL); returns the length."""
    name = sql_identifier(column)
    low, high, rows = con.execute(f"SELECT min(len({name})), max(len({name})), count(*) FROM {source}").fetchall()[0]
    if rows == 0:
        raise LoadError("the file holds no rows")
    if low is None:
        raise LoadError(f"column {column} is NULL in every row")
    want = expected or low
    if low != want or high != want:
        bad = low if low != want else high
        raise LoadError(f"expected {want} dimensions in column {column}, not {bad}")
    return want


def load_sql_source(con, table, column, source):
    """Loads a Parquet or CSV scan expression into the table; returns rows inserted."""
    # Read the file once into a staging table (CSV text like '[0.1, 0.2]' becomes a float list),
    # check every row's length there, then insert with the FLOAT[n] cast.
    name = sql_identifier(column)
    con.execute(f"CREATE OR REPLACE TEMP TABLE bulk_stage AS SELECT * REPLACE "
                f"(CAST({name} AS FLOAT[]) AS {name}) FROM {source}")
    try:
        expected = table_dimensions(con, table, column)
        dim = check_lengths(con, "bulk_stage", column, expected)
        cast = f"SELECT * REPLACE (CAST({name} AS FLOAT[{dim}]) AS {name}) FROM bulk_stage"
        if expected is None:
            con.execute(f"CREATE TABLE {sql_identifier(table)} AS {cast}")
        else:
            con.execute(f"INSERT INTO {sql_identifier(table)} BY NAME {cast}")
        return con.execute("SELECT count(*) FROM bulk_stage").fetchall()[0][0]
    finally:
        con.execute("DROP TABLE IF EXISTS bulk_stage")


def load_npy(con, table, column, id_column, path):
    """Loads a 2-D float .npy file as (id, embedding) rows through Arrow, in chunks; returns rows."""
    vectors = np.load(path, mmap_mode="r")
    if vectors.ndim != 2:
        raise LoadError(f"expected a 2-D array (rows, dimensions) in {path}, not shape {vectors.shape}")
    dim = vectors.shape[1]
    expected = table_dimensions(con, table, column)
    if expected is not None and expected != dim:
        raise LoadError(f"expected {expected} dimensions in {path}, not {dim}")
    table_name, id_name = sql_identifier(table), sql_identifier(id_column)
    if expected is None:
        con.execute(f"CREATE TABLE {table_name} ({id_name} BIGINT, {sql_identifier(column)} FLOAT[{dim}])")
    # New ids follow the largest one (a count would reuse ids after deletes).
    first = con.execute(f"SELECT coalesce(max({id_name}) + 1, 0) FROM {table_name}").fetchall()[0][0]
    for start in range(0, len(vectors), NPY_CHUNK):
        chunk = vectors[start:start + NPY_CHUNK]
        ids = np.arange(first + start, first + start + len(chunk))
        insert_vectors(con, table, ids, chunk, id_column=id_column, column=column)
    return len(vectors)


def load_file(con, table, path, column="embedding", id_column="id"):
    """Loads a .npy, .parquet or .csv file into the table; returns rows inserted."""
    path = pathlib.Path(path)
    if not path.exists():
        raise LoadError(f"{path} does not exist")
    literal = sql_string(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_npy(con, table, column, id_column, path)
    if suffix == ".parquet":
        return load_sql_source(con, table, column, f"read_parquet({literal})")
    if suffix == ".csv":
        return load_sql_source(con, table, column, f"read_csv({literal})")
    raise LoadError(f"expected a .npy, .parquet or .csv file, not {path.name}")


def rate(rows, seconds):
    """Rows per second, rounded."""
    return round(rows / seconds) if seconds > 0 else float("inf")


def bench_row_inserts(rows, dim):
    """Rows/s of one INSERT per row with the vector as a list parameter (this Python's DuckDB)."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t (id BIGINT, embedding FLOAT[{dim}])")
    seconds = sum(one_row_insert_ms(con, "t", range(rows), gaussian(rows, dim, seed=1))) / 1000
    return {"duckdb": duckdb.__version__, "rows_per_s": rate(rows, seconds), "ms_per_row": seconds * 1000 / rows}


def write_fvecs(path, vectors):
    """Writes float32 rows in the .fvecs layout: each row is its int32 dimension, then its floats."""
    rows, dim = vectors.shape
    out = np.empty((rows, dim + 1), dtype=np.float32)
    out[:, 0] = np.array([dim], dtype=np.int32).view(np.float32)[0]
    out[:, 1:] = vectors
    out.tofile(path)


def bench(rows, dim, extension):
    """Rows/s of every loading path, printed as a markdown table."""
    vectors = gaussian(rows, dim, seed=7)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        arrow = pa.table({"id": np.arange(rows), "embedding": vector_array(vectors)})
        np.save(tmp / "v.npy", vectors)
        write_fvecs(tmp / "v.fvecs", vectors)
        pq.write_table(arrow, tmp / "v.parquet")
        con = connect(extension=extension)
        con.register("arrow_rows", arrow)
        con.execute(f"COPY (SELECT id, embedding::FLOAT[{dim}]::VARCHAR AS embedding FROM arrow_rows) "
                    f"TO {sql_string(tmp / 'v.csv')} (HEADER)")

        def fresh():
            """Replaces t with an empty table."""
            con.execute(f"CREATE OR REPLACE TABLE t (id BIGINT, embedding FLOAT[{dim}])")

        paths = [
            ("NumPy array -> Arrow table -> INSERT ... SELECT",
             lambda: con.execute(f"INSERT INTO t SELECT id, embedding::FLOAT[{dim}] FROM arrow_rows")),
            ("Parquet file (scripts/load/bulk_load.py, read_parquet)",
             lambda: load_file(con, "t", tmp / "v.parquet")),
            (".npy file (scripts/load/bulk_load.py)", lambda: load_file(con, "t", tmp / "v.npy")),
            ("CSV file, '[...]' text (scripts/load/bulk_load.py, read_csv)",
             lambda: load_file(con, "t", tmp / "v.csv")),
            (".npy file, SQL: INSERT INTO t SELECT * FROM read_npy(...)",
             lambda: con.execute(f"INSERT INTO t SELECT * FROM read_npy({sql_string(tmp / 'v.npy')})")),
            (".fvecs file, SQL: INSERT INTO t SELECT * FROM read_fvecs(...)",
             lambda: con.execute(f"INSERT INTO t SELECT * FROM read_fvecs({sql_string(tmp / 'v.fvecs')})")),
        ]
        for name, action in paths:
            fresh()
            seconds = timed(action)
            assert con.execute("SELECT count(*) FROM t").fetchall()[0][0] == rows
            results.append((name, duckdb.__version__, rate(rows, seconds), f"{seconds:.2f} s for {rows} rows"))
    sample = min(rows, 2000)
    row_paths = [("one INSERT per row, list parameter", sys.executable)]
    if VSS_PYTHON.exists():
        row_paths.append(("one INSERT per row, list parameter", VSS_PYTHON))
    for name, python in row_paths:
        n = sample if python == sys.executable else min(sample, 200)
        r = worker_json(python, __spec__.name, ["--bench-row-inserts", n, "--dim", dim], "row inserts")
        if "error" in r:
            sys.exit(f"bulk_load: {r['error']}")
        results.append((name, r["duckdb"], r["rows_per_s"], f"{r['ms_per_row']:.2f} ms per row ({n} rows)"))
    lines = [f"| path ({dim}-d float32) | DuckDB | rows/s | detail |", "|---|---|---|---|"]
    lines += [f"| {name} | {version} | {per_s:,} | {detail} |" for name, version, per_s, detail in results]
    print("\n".join(lines))


def main():
    """Parses arguments; loads a file into a table, or runs the loading benchmark (or one of its workers)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("database", nargs="?")
    ap.add_argument("table", nargs="?")
    ap.add_argument("file", nargs="?")
    ap.add_argument("--column", default="embedding")
    ap.add_argument("--id-column", default="id")
    ap.add_argument("--extension", default=str(EXTENSION))
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--bench-row-inserts", type=int)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    args = ap.parse_args()
    if args.bench_row_inserts:
        print(json.dumps(bench_row_inserts(args.bench_row_inserts, args.dim)))
        return
    if args.bench:
        bench(args.rows, args.dim, args.extension)
        return
    if not (args.database and args.table and args.file):
        ap.error("expected DATABASE TABLE FILE (or --bench)")
    con = connect(args.database, extension=args.extension)
    try:
        start = time.perf_counter()
        rows = load_file(con, args.table, args.file, args.column, args.id_column)
    except (LoadError, duckdb.Error) as error:
        sys.exit(f"bulk_load: {error}")
    seconds = time.perf_counter() - start
    print(f"loaded {rows} rows into {args.table} in {seconds:.2f}s ({rate(rows, seconds):,} rows/s)")


if __name__ == "__main__":
    main()
