#!/usr/bin/env python3
"""Demo on an embedded default: load the extension into DuckDB, build a table of 384-dimensional
embeddings in SQL, index it with HNSW, and answer nearest-neighbour questions; report the plan,
recall@10 against exact search and the speed-up.

    make demo        # or: .venv/bin/python scripts/demo.py [--rows N]
"""
import argparse
import json
import pathlib
import time

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "build" / "release" / "hnsw.duckdb_extension"
TYPES = ["parse", "plan", "search", "summarize", "translate", "classify", "extract", "review"]


def timed(con, sql, params, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        rows = con.execute(sql, params).fetchall()
        best = min(best, time.perf_counter() - start)
    return rows, best * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=20)
    args = ap.parse_args()

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    version, simd = con.execute("SELECT hnsw_version(), hnsw_simd()").fetchone()
    print(f"hnsw {version} loaded into DuckDB {duckdb.__version__} (distance kernels: {simd})")

    start = time.perf_counter()
    # Each task type is a direction in 384-d space, each of its 64 variants a smaller offset
    # from it, and each execution a little noise on top: neighbours share a type and variant.
    type_list = "[" + ", ".join(f"'{t}'" for t in TYPES) + "]"
    con.execute(f"""
        CREATE TABLE executions AS
        SELECT i AS task_id, {type_list}[i % 8 + 1] AS task_type,
               array_normalize(list_transform(range(384), lambda j:
                   ((hash((i % 8) * 1000 + j) % 2000) / 1000.0 - 1) +
                   0.6 * ((hash((i % 512) * 7 + j * 131 + 17) % 2000) / 1000.0 - 1) +
                   0.2 * ((hash(i::BIGINT * 7919 + j) % 2000) / 1000.0 - 1))::FLOAT[384]) AS embedding
        FROM range({args.rows}) r(i)
    """)
    print(f"created executions: {args.rows} rows x FLOAT[384] in {time.perf_counter() - start:.2f}s")

    start = time.perf_counter()
    con.execute("CREATE INDEX executions_hnsw ON executions USING HNSW (embedding) WITH (metric = 'cosine')")
    info = con.execute("SELECT count, approx_memory_usage, levels FROM pragma_hnsw_index_info()").fetchone()
    print(f"CREATE INDEX ... USING HNSW (metric = 'cosine'): {time.perf_counter() - start:.2f}s, "
          f"{info[0]} vectors, {info[1] / 2**20:.1f} MiB, {info[2]} layers")

    # The query vector is a prepared-statement parameter (binding it costs well under 1 ms).
    sql = ("SELECT task_id, task_type, array_cosine_distance(embedding, ?::FLOAT[384]) AS distance "
           "FROM executions ORDER BY distance LIMIT 10")

    def vector_of(task_id):
        return [list(con.execute("SELECT embedding FROM executions WHERE task_id = ?", [task_id]).fetchone()[0])]

    plan = json.dumps(json.loads(con.execute("EXPLAIN (FORMAT JSON) " + sql, vector_of(42)).fetchall()[0][1]))
    print(f"\nEXPLAIN uses the index: {'HNSW_INDEX_SCAN' in plan}")
    rows, ms = timed(con, sql, vector_of(42))
    print(f"10 nearest executions to task 42 ({ms:.1f} ms):")
    for task_id, task_type, distance in rows[:5]:
        print(f"  task {task_id:>6}  {task_type:<10} {distance:.4f}")
    print("  ...")

    recall, t_index, t_exact = 0.0, 0.0, 0.0
    for i in range(args.queries):
        params = vector_of(1 + i * 997 % args.rows)
        got, ms = timed(con, sql, params, repeat=3)
        t_index += ms
        con.execute("SET disabled_optimizers = 'extension'")
        want, ms = timed(con, sql, params, repeat=1)
        con.execute("RESET disabled_optimizers")
        t_exact += ms
        recall += len({r[0] for r in got} & {r[0] for r in want}) / 10
    print(f"\nrecall@10 against exact search over {args.queries} queries: {recall / args.queries:.3f}")
    print(f"mean latency: index {t_index / args.queries:.1f} ms, exact {t_exact / args.queries:.1f} ms "
          f"(speed-up {t_exact / t_index:.1f}x)")


if __name__ == "__main__":
    main()
