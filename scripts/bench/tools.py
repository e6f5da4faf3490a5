"""Cost of the SQL measuring tools on a realistic index: one hnsw_benchmark call (1,000 queries,
5 ef values) and one hnsw_tune call on 100k x 384 clustered rows, with how much of each is the
exact ground truth (truth_ms), the searches themselves (queries / qps per ef) and the rest.
Writes bench-results/tools.md and prints it.

    .venv/bin/python -m scripts.bench.tools [--rows 100000] [--dim 384] [--queries 1000]
"""
import argparse
import time

import numpy as np
import pyarrow as pa

from scripts.common import REPORTS, clustered, command_line, connect, machine, timed, vector_array, write_report

SEED = 11


def main():
    """Builds the index, runs hnsw_benchmark and hnsw_tune once each, writes the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    args = ap.parse_args()
    vectors = clustered(args.rows + args.queries, args.dim, seed=SEED)
    data, queries = vectors[: args.rows], vectors[args.rows :]
    con = connect(threads=2)
    con.register("data_arrow", pa.table({"id": np.arange(args.rows), "v": vector_array(data)}))
    con.execute(f"CREATE TABLE items AS SELECT id, v::FLOAT[{args.dim}] AS v FROM data_arrow")
    con.register("query_arrow", pa.table({"v": vector_array(queries)}))
    con.execute(f"CREATE TABLE queries AS SELECT v::FLOAT[{args.dim}] AS v FROM query_arrow")
    build_s = timed(lambda: con.execute("CREATE INDEX idx ON items USING HNSW (v)"))

    rows = []
    bench_s = timed(lambda: rows.extend(con.execute(
        "SELECT ef, recall, distances_per_query, p50_ms, p99_ms, qps, truth_ms "
        "FROM hnsw_benchmark('idx', (FROM queries), k := 10, ef := [16, 32, 64, 128, 256])").fetchall()))
    truth_s = rows[0][6] / 1000
    search_s = sum(args.queries / r[5] for r in rows)
    tuned = []
    tune_s = timed(lambda: tuned.extend(con.execute(
        "SELECT ef, recall, chosen FROM hnsw_tune('idx', (FROM queries), target_recall := 0.95)").fetchall()))
    chosen = next((ef for ef, _, is_chosen in tuned if is_chosen), None)

    lines = [
        f"# Cost of hnsw_benchmark and hnsw_tune ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"Machine: {machine()}. Command: `{command_line()}`. {args.rows} x {args.dim} clustered rows (seed "
        f"{SEED}), {args.queries} queries from the same distribution, l2sq, M=16, ef_construction=128, "
        f"SET threads = 2; CREATE INDEX took {build_s:.1f} s.",
        "",
        "| ef | recall@10 | distances/query | p50 ms | p99 ms | QPS |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {ef} | {recall:.3f} | {d:.0f} | {p50:.3f} | {p99:.3f} | {qps:,.0f} |"
              for ef, recall, d, p50, p99, qps, _ in rows]
    lines += [
        "",
        f"- hnsw_benchmark, 5 ef values: {bench_s:.2f} s in all; exact ground truth {truth_s:.2f} s "
        f"({100 * truth_s / bench_s:.0f} %, computed once, 2 threads); the searches 2 x {search_s:.2f} s "
        f"({100 * 2 * search_s / bench_s:.0f} %, one at a time; each ef runs a warm-up pass, then the timed "
        f"one); the rest (reading the queries, SQL) {max(0.0, bench_s - truth_s - 2 * search_s):.2f} s.",
        f"- hnsw_tune to recall 0.95: {tune_s:.2f} s, {len(tuned)} ef values measured, chosen ef {chosen}.",
    ]
    write_report(REPORTS / "tools.md", lines)


if __name__ == "__main__":
    main()
