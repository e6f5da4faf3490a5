"""Filtered-search benchmark: `SELECT id FROM docs WHERE <filter> ORDER BY array_cosine_distance(v, q)
LIMIT 10` through DuckDB, in one run, for
  - hnsw (this extension, or the build given with --extension) on DuckDB 2.0.0,
  - the exact filtered plan (no index) on DuckDB 2.0.0,
  - vss on DuckDB 1.5.5 (duckdb==1.5.5 + duckdb-extension-vss==1.5.5 from PyPI, in .venv-vss).
Data: 100k x 384 clustered (100 clusters, seeded), columns id, tag (uniform 0..999, independent of
the vectors) and cl (the row's cluster). Queries: stored rows plus noise. Filters at 50 / 10 / 1 /
0.1 % of the rows, each in two kinds: "follows" keeps the query's own cluster (the rows nearest
the query match) and "avoids" never keeps it (every matching row lies far from the query). The
query vector is a prepared-statement parameter on DuckDB 2.0.0 and a literal in the SQL text for vss
(DuckDB 1.5.5's client binds list parameters slowly). Row counts and
recall@10 are measured against the exact plan's answers. Writes bench-results/filtered.md.

    make bench-filtered   # or: .venv/bin/python -m scripts.bench.filtered [--rows N] [--queries N]
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
import pyarrow as pa

from scripts.common import (EXTENSION, K, REPORTS, VSS_PYTHON, command_line, connect, extension_version, machine,
                            plan_uses_index, require_vss_and_extension, search_latencies, timed, vector_array,
                            worker_result, write_report)

SEED = 21
DIM = 384
CLUSTERS = 100
ENGINES = ("hnsw", "exact", "vss")  # the report's order
# (share, kind, WHERE clause): `?` is the query's cluster.
POINTS = [
    (0.50, "follows", "cl = ? OR tag < 495"),
    (0.50, "avoids", "cl <> ? AND tag < 505"),
    (0.10, "follows", "cl = ? OR tag < 91"),
    (0.10, "avoids", "cl <> ? AND tag < 101"),
    (0.01, "follows", "cl = ?"),
    (0.01, "avoids", "cl <> ? AND tag < 10"),
    (0.001, "follows", "cl = ? AND tag < 100"),
    (0.001, "avoids", "cl <> ? AND tag < 1"),
]


def make_data(rows, queries):
    """Clustered vectors, their clusters, an independent tag; queries = other stored rows plus noise."""
    rng = np.random.default_rng(SEED)
    centres = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
    cluster = rng.integers(0, CLUSTERS, rows)
    data = (centres[cluster] + 0.35 * rng.normal(size=(rows, DIM))).astype(np.float32)
    tag = rng.integers(0, 1000, rows)
    picks = rng.choice(rows, queries, replace=False)
    q = (data[picks] + 0.1 * rng.normal(size=(queries, DIM))).astype(np.float32)
    return data, cluster, tag, q, cluster[picks]


def query_sql(where, cl, vector=None):
    """The filtered top-k text: the query vector a literal, or the parameter ? without one."""
    text = "?" if vector is None else str(vector.tolist())
    clause = f"WHERE {where.replace('?', str(int(cl)))} " if where else ""
    return f"SELECT id FROM docs {clause}ORDER BY array_cosine_distance(v, {text}::FLOAT[{DIM}]) LIMIT {K}"


def worker(kind, tmp, extension, threads):
    """Runs in the engine's venv: table, index, then every filter point's timed queries; prints one JSON object."""
    tmp = pathlib.Path(tmp)
    data, cluster, tag, queries, query_cl = (np.load(tmp / f"{name}.npy")
                                             for name in ("data", "cluster", "tag", "queries", "query_cl"))
    con = connect(engine=kind, extension=extension, threads=threads)
    con.register("rows_arrow", pa.table({"id": np.arange(len(data)), "tag": tag, "cl": cluster,
                                         "v": vector_array(data)}))
    con.execute(f"CREATE TABLE docs AS SELECT id::INTEGER AS id, tag::INTEGER AS tag, cl::INTEGER AS cl, "
                f"v::FLOAT[{DIM}] AS v FROM rows_arrow")
    con.unregister("rows_arrow")
    result = {"engine": kind, "duckdb": duckdb.__version__, "points": []}
    if kind != "exact":
        result["extension_version"] = extension_version(con, kind)
        result["create_index_s"] = timed(
            lambda: con.execute("CREATE INDEX idx ON docs USING HNSW (v) WITH (metric = 'cosine')"))
    for share, filter_kind, where in [(1.0, "none", "")] + POINTS:
        if kind == "vss":
            # DuckDB 1.5.5's client binds a FLOAT[n] list parameter in ~35 ms: a literal is faster.
            work = [(query_sql(where, cl, q), []) for q, cl in zip(queries, query_cl)]
        else:
            work = [(query_sql(where, cl), [q.tolist()]) for q, cl in zip(queries, query_cl)]
        point = search_latencies(lambda item: [r[0] for r in con.execute(*item).fetchall()], work)
        point.update(share=share, kind=filter_kind, where=where, uses_index=plan_uses_index(con, *work[0]))
        result["points"].append(point)
    print(json.dumps(result))


def figures(point, exact_point):
    """p50/p99, mean rows, whether every query returned the exact plan's row count, recall@10."""
    lat = point["latencies_ms"]
    same_count = all(len(a) == len(b) for a, b in zip(point["answers"], exact_point["answers"]))
    recalls = [len(set(a) & set(b)) / len(b) for a, b in zip(point["answers"], exact_point["answers"]) if b]
    return {
        "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
        "rows": float(np.mean([len(a) for a in point["answers"]])), "same_count": same_count,
        "recall": float(np.mean(recalls)) if recalls else 1.0, "uses_index": point["uses_index"],
    }


def report(args, results):
    """The markdown report: one table row per filter point and engine, then hnsw's ratios."""
    exact_points = results["exact"]["points"]
    versions = ", ".join(f"{kind} {results[kind]['extension_version']} on DuckDB {results[kind]['duckdb']}"
                         for kind in ("hnsw", "vss"))
    lines = [
        f"# Filtered-search benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}, SET threads={args.threads}. Data: {args.rows} x {DIM} clustered ({CLUSTERS} "
        f"clusters, seed {SEED}), cosine, {args.queries} queries per point (stored rows plus noise), k={K}, index "
        f"defaults (M=16, ef_construction=128, ef_search=64). \"follows\": the filter keeps the query's own "
        f"cluster; \"avoids\": it never does. Query vector: a parameter on 2.0.0, a literal for vss. "
        f"Rows and recall@10 against the exact plan's answers (\"rows = exact\": "
        f"every query returned the exact plan's row count). CREATE INDEX: hnsw "
        f"{results['hnsw']['create_index_s']:.1f} s, vss {results['vss']['create_index_s']:.1f} s. "
        f"Versions: {versions}. Command: `{command_line()}`.",
        "",
        "| rows matching | filter | engine | p50 ms | p99 ms | rows returned | rows = exact | recall@10 "
        "| index in plan |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    unfiltered_p50 = figures(results["hnsw"]["points"][0], exact_points[0])["p50"]
    for i, exact_point in enumerate(exact_points):
        row = {kind: figures(results[kind]["points"][i], exact_point) for kind in ENGINES}
        share = f"{exact_point['share'] * 100:g} %"
        for kind in ENGINES:
            f = row[kind]
            lines.append(f"| {share} | {exact_point['kind']} | {kind} | {f['p50']:.2f} | {f['p99']:.2f} "
                         f"| {f['rows']:.2f} | {'yes' if f['same_count'] else 'NO'} | {f['recall']:.3f} "
                         f"| {f['uses_index']} |")
        if exact_point["kind"] != "none":
            ratios.append(f"- {share} {exact_point['kind']}: hnsw / exact p50 = "
                          f"{row['hnsw']['p50'] / row['exact']['p50']:.2f}x (exact {row['exact']['p50']:.1f} ms), "
                          f"hnsw / vss = {row['hnsw']['p50'] / row['vss']['p50']:.2f}x, hnsw / unfiltered hnsw = "
                          f"{row['hnsw']['p50'] / unfiltered_p50:.2f}x")
    lines += ["", "hnsw's p50 against the exact filtered plan, vss, and its own unfiltered query:", ""] + ratios
    return lines


def main():
    """Parses arguments; runs one engine's worker, or every engine and writes the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extension", type=pathlib.Path, default=EXTENSION,
                    help=f"the hnsw extension to load (default {EXTENSION})")
    ap.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.tmp, args.extension, args.threads)
        return

    require_vss_and_extension(args.extension, "bench-filtered")
    arrays = dict(zip(("data", "cluster", "tag", "queries", "query_cl"), make_data(args.rows, args.queries)))
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-filtered-") as tmp:
        for name, array in arrays.items():
            np.save(pathlib.Path(tmp) / f"{name}.npy", array)
        for kind, python in (("exact", sys.executable), ("hnsw", sys.executable), ("vss", VSS_PYTHON)):
            print(f"running {kind} ...", flush=True)
            worker_args = ["--worker", kind, "--tmp", tmp, "--extension", args.extension.resolve(),
                           "--threads", args.threads]
            results[kind] = worker_result(python, __spec__.name, worker_args, kind)
    write_report(REPORTS / "filtered.md", report(args, results))


if __name__ == "__main__":
    main()
