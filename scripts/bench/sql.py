"""SQL benchmark: CREATE INDEX time, query latency and one-row INSERT latency through DuckDB, in one run, for
  - hnsw (this extension, or the build given with --extension) on DuckDB 2.0.0,
  - exact search (no index) on DuckDB 2.0.0,
  - vss on DuckDB 1.5.5 (duckdb==1.5.5 + duckdb-extension-vss==1.5.5 from PyPI, in .venv-vss).
Data: 100k x 128 clustered, seeded; 200 queries from the same distribution; recall@10 against
the exact top-10 computed with NumPy. Query: SELECT id FROM items ORDER BY array_distance(v, q)
LIMIT 10, with q once as a literal (both engines parse the same text) and once as a prepared-
statement parameter (cheap to bind in 2.0.0, ~35 ms per FLOAT[n] list in the 1.5.5 client).
Then, after the queries, 200 autocommitted one-row INSERT INTO items VALUES (?, ?) with the vector
as a list parameter (after 10 untimed) into the indexed table (exact: the table without an index).
Writes bench-results/sql.md.

    make bench-sql    # or: .venv/bin/python -m scripts.bench.sql [--rows N] [--dim N] [--queries N]
                      #     [--threads N] [--extension PATH]
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

import duckdb
import numpy as np

from scripts.common import (EXTENSION, K, REPORTS, VSS_PYTHON, clustered, command_line, connect, exact_top_k,
                            extension_version, insert_vectors, knn_sql, machine, mean_recall, one_row_insert_ms,
                            plan_uses_index, require_vss_and_extension, search_latencies, timed, worker_result,
                            write_report)

SEED = 7
INSERT_WARMUP = 10
INSERTS = 200
ENGINES = ("hnsw", "vss", "exact")  # the report's order


def ids_of(cursor):
    """The id column of a query's result rows."""
    return [row[0] for row in cursor.fetchall()]


def worker(kind, tmp, extension, threads):
    """Runs in the engine's venv: table, index, timed queries, then timed one-row INSERTs; prints one JSON object."""
    tmp = pathlib.Path(tmp)
    data, queries, inserts = (np.load(tmp / f"{name}.npy") for name in ("data", "queries", "inserts"))
    dim = data.shape[1]
    con = connect(engine=kind, extension=extension, threads=threads)
    insert_vectors(con, "items", np.arange(len(data)), data, create=True)
    result = {"engine": kind, "duckdb": duckdb.__version__}
    if kind != "exact":
        result["extension_version"] = extension_version(con, kind)
        result["create_index_s"] = timed(lambda: con.execute("CREATE INDEX idx ON items USING HNSW (v)"))
    # The literal queries' text is made before timing: only DuckDB's parsing of it counts.
    literals = [knn_sql(dim, q) for q in queries]
    result["plan_uses_index"] = plan_uses_index(con, literals[0])
    result["literal"] = search_latencies(lambda sql: ids_of(con.execute(sql)), literals)
    prepared = knn_sql(dim)
    result["param"] = search_latencies(lambda q: ids_of(con.execute(prepared, [q.tolist()])), queries)
    ids = np.arange(len(data), len(data) + len(inserts))
    one_row_insert_ms(con, "items", ids[:INSERT_WARMUP], inserts[:INSERT_WARMUP])
    result["insert_latencies_ms"] = one_row_insert_ms(con, "items", ids[INSERT_WARMUP:], inserts[INSERT_WARMUP:])
    print(json.dumps(result))


def run_worker(python, kind, tmp, args):
    """Runs one engine's worker in a subprocess; exits with its error if it failed."""
    worker_args = ["--worker", kind, "--tmp", tmp, "--extension", args.extension.resolve(), "--threads", args.threads]
    return worker_result(python, __spec__.name, worker_args, kind)


def figures(result, truth):
    """One engine's figures: CREATE INDEX s, p50/p99 per way to pass q, one-row INSERT p50/p90, recall@10."""
    literal, param = result["literal"]["latencies_ms"], result["param"]["latencies_ms"]
    inserts = result["insert_latencies_ms"]
    return {
        "create_s": result.get("create_index_s"),
        "literal_p50": np.percentile(literal, 50), "literal_p99": np.percentile(literal, 99),
        "param_p50": np.percentile(param, 50), "param_p99": np.percentile(param, 99),
        "insert_p50": np.percentile(inserts, 50), "insert_p90": np.percentile(inserts, 90),
        "recall": mean_recall(result["literal"]["answers"], truth),
    }


def report(args, results, truth):
    """The markdown report: the table, then hnsw's ratios to vss and to exact search."""
    rows = {kind: figures(results[kind], truth) for kind in ENGINES}
    hnsw, vss, exact = rows["hnsw"], rows["vss"], rows["exact"]
    versions = ", ".join(f"{kind} {results[kind]['extension_version']} on DuckDB {results[kind]['duckdb']}"
                         for kind in ("hnsw", "vss"))
    lines = [
        f"# SQL benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}, SET threads={args.threads}. Data: {args.rows} x {args.dim} clustered (seed {SEED}), "
        f"{args.queries} queries, k={K}, index defaults (M=16, ef_construction=128, ef_search=64). One-row INSERT: "
        f"{INSERTS} autocommitted `INSERT INTO items VALUES (?, ?)` with the vector as a list parameter, after "
        f"{INSERT_WARMUP} untimed and after the queries (exact: the table without an index; vss's figure includes "
        f"DuckDB 1.5.5's slow binding of a list parameter). Versions: {versions}. Command: `{command_line()}`.",
        "",
        "| engine | DuckDB | CREATE INDEX s | literal q: p50 ms | p99 ms | parameter q: p50 ms | p99 ms "
        "| 1-row INSERT: p50 ms | p90 ms | recall@10 | index in plan |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, row in rows.items():
        create_s = f"{row['create_s']:.2f}" if row["create_s"] is not None else "-"
        lines.append(f"| {kind} | {results[kind]['duckdb']} | {create_s} | {row['literal_p50']:.2f} "
                     f"| {row['literal_p99']:.2f} | {row['param_p50']:.2f} | {row['param_p99']:.2f} "
                     f"| {row['insert_p50']:.2f} | {row['insert_p90']:.2f} | {row['recall']:.3f} "
                     f"| {results[kind]['plan_uses_index']} |")
    best_hnsw, best_vss = min(hnsw["literal_p50"], hnsw["param_p50"]), min(vss["literal_p50"], vss["param_p50"])
    lines += [
        "",
        f"- CREATE INDEX: hnsw / vss = {hnsw['create_s'] / vss['create_s']:.2f}x",
        f"- p50, literal query vector: hnsw / vss = {hnsw['literal_p50'] / vss['literal_p50']:.2f}x, "
        f"hnsw / exact = {hnsw['literal_p50'] / exact['literal_p50']:.3f}x",
        f"- p50, each engine's faster way to pass q: hnsw {best_hnsw:.2f} ms / vss {best_vss:.2f} ms "
        f"= {best_hnsw / best_vss:.2f}x",
        f"- p50, one-row INSERT: hnsw / vss = {hnsw['insert_p50'] / vss['insert_p50']:.2f}x, "
        f"hnsw / no index = {hnsw['insert_p50'] / exact['insert_p50']:.2f}x",
    ]
    return lines


def main():
    """Parses arguments; runs one engine's worker, or every engine and writes the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extension", type=pathlib.Path, default=EXTENSION,
                    help=f"the hnsw extension to load, e.g. an older build (default {EXTENSION})")
    ap.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.tmp, args.extension, args.threads)
        return

    require_vss_and_extension(args.extension, "bench-sql")
    allv = clustered(args.rows + args.queries + INSERT_WARMUP + INSERTS, args.dim, seed=SEED)
    data, queries = allv[: args.rows], allv[args.rows : args.rows + args.queries]
    inserts = allv[args.rows + args.queries :]
    truth = exact_top_k(data, queries)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp:
        for name, array in (("data", data), ("queries", queries), ("inserts", inserts)):
            np.save(pathlib.Path(tmp) / f"{name}.npy", array)
        for kind, python in (("exact", sys.executable), ("hnsw", sys.executable), ("vss", VSS_PYTHON)):
            print(f"running {kind} ...", flush=True)
            results[kind] = run_worker(python, kind, tmp, args)
    write_report(REPORTS / "sql.md", report(args, results, truth))


if __name__ == "__main__":
    main()
