#!/usr/bin/env python3
"""Demo on an embedded default: load the extension into DuckDB, build a small table of
384-dimensional embeddings in SQL, and answer nearest-neighbour questions with the
extension's distance functions, checked against DuckDB's own.

    make demo        # or: .venv/bin/python scripts/demo.py [--rows N]
"""
import argparse
import pathlib
import time

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "build" / "release" / "hnsw.duckdb_extension"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000)
    args = ap.parse_args()

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    version, simd = con.execute("SELECT hnsw_version(), hnsw_simd()").fetchone()
    print(f"hnsw {version} loaded into DuckDB {duckdb.__version__} (distance kernels: {simd})")

    start = time.perf_counter()
    # Eight task types, each a direction in 384-d space plus per-row noise: neighbours share a type.
    con.execute(f"""
        CREATE TABLE executions AS
        SELECT i AS task_id,
               ['parse', 'plan', 'search', 'summarize', 'translate', 'classify', 'extract', 'review'][i % 8 + 1]
                   AS task_type,
               array_normalize(list_transform(range(384), lambda j:
                   ((hash((i % 8) * 1000 + j) % 2000) / 1000.0 - 1) +
                   0.6 * ((hash(i * 7919 + j) % 2000) / 1000.0 - 1))::FLOAT[384]) AS embedding
        FROM range({args.rows}) r(i)
    """)
    print(f"created executions: {args.rows} rows x FLOAT[384] in {time.perf_counter() - start:.2f}s")

    query = "(SELECT embedding FROM executions WHERE task_id = 42)"
    for label, fn in (("array_l2sq_distance (hnsw)", "array_l2sq_distance"), ("array_distance (DuckDB)", "array_distance")):
        start = time.perf_counter()
        rows = con.execute(f"""
            SELECT task_id, task_type, round({fn}(embedding, {query})::DOUBLE, 4) AS dist
            FROM executions ORDER BY dist, task_id LIMIT 5
        """).fetchall()
        ms = (time.perf_counter() - start) * 1000
        print(f"\n5 nearest to task 42 by {label} ({ms:.1f} ms, exact scan):")
        for r in rows:
            print(f"  task {r[0]:>6}  {r[1]:<10} {r[2]}")

    same = con.execute(f"""
        SELECT count(*) FROM executions
        WHERE abs(array_l2sq_distance(embedding, {query}) - array_distance(embedding, {query}) ^ 2) > 1e-4
    """).fetchone()[0]
    print(f"\nrows where array_l2sq_distance != array_distance^2: {same}")
    print("The HNSW index (CREATE INDEX ... USING HNSW) and the top-k rewrite come next; see README.")


if __name__ == "__main__":
    main()
