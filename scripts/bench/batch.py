"""Many queries in one statement: 1,000 queries against 100k x 384 (l2) in one SQL statement, in
one run, for
  - hnsw (this extension) on the default DuckDB (the file DUCKDB_VERSION): the LATERAL top-k join, and vss_join,
  - the exact LATERAL join (no index) on the same DuckDB (on the first --exact-queries queries),
  - vss 1.5.5's LATERAL join (duckdb==1.5.5 + duckdb-extension-vss==1.5.5, in .venv-vss),
  - hnswlib's batch knn_query on the same threads, on the same vectors.
Each engine runs at the smallest ef of --ef whose recall@10 (against NumPy's exact answer)
reaches 0.95, so queries per second compare at equal recall. SET threads = --threads.
Writes bench-results/batch.md.

    make bench-batch   # or: .venv/bin/python -m scripts.bench.batch [--rows N] [--queries N] [--threads N]
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

from scripts.common import (EXTENSION, K, REPORTS, VSS_PYTHON, clustered, command_line, connect, exact_top_k,
                            extension_version, machine, mean_recall, require_vss_and_extension, timed, vector_array,
                            worker_result, write_report)

SEED = 31
DIM = 384
TARGET = 0.95
LATERAL = (f"SELECT q.qid, t.id FROM queries q, LATERAL (SELECT id, array_distance(v, q.qv) AS d FROM items "
           f"ORDER BY d LIMIT {K}) t")
VSS_JOIN = f"SELECT left_tbl.qid, right_tbl.id, score FROM vss_join(queries, items, qv, v, {K})"


def answers_by_query(rows, count):
    """Per query id, its answer ids (any order: recall does not care)."""
    out = [[] for _ in range(count)]
    for row in rows:
        out[int(row[0])].append(int(row[1]))
    return out


def load(con, data, queries):
    con.register("rows_arrow", pa.table({"id": np.arange(len(data)), "v": vector_array(data)}))
    con.execute(f"CREATE TABLE items AS SELECT id::INTEGER AS id, v::FLOAT[{DIM}] AS v FROM rows_arrow")
    con.unregister("rows_arrow")
    con.register("q_arrow", pa.table({"qid": np.arange(len(queries)), "qv": vector_array(queries)}))
    con.execute(f"CREATE TABLE queries AS SELECT qid::INTEGER AS qid, qv::FLOAT[{DIM}] AS qv FROM q_arrow")
    con.unregister("q_arrow")


def timed_statement(con, sql, count, repeats=2):
    """The fastest of `repeats` runs of one statement (seconds) and its answers."""
    best, rows = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        rows = con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - start)
    return best, answers_by_query(rows, count)


def worker(kind, tmp, extension, threads, efs, exact_queries):
    """Runs in the engine's venv: tables, index, then each statement per ef; prints one JSON object."""
    tmp = pathlib.Path(tmp)
    data, queries = np.load(tmp / "data.npy"), np.load(tmp / "queries.npy")
    if kind == "exact":
        queries = queries[:exact_queries]
    con = connect(engine=kind, extension=extension, threads=threads)
    load(con, data, queries)
    result = {"engine": kind, "duckdb": duckdb.__version__, "runs": []}
    if kind == "exact":
        seconds, answers = timed_statement(con, LATERAL, len(queries), repeats=1)
        result["runs"].append({"shape": "lateral", "ef": None, "seconds": seconds, "answers": answers})
        print(json.dumps(result))
        return
    result["extension_version"] = extension_version(con, kind)
    result["create_index_s"] = timed(lambda: con.execute("CREATE INDEX idx ON items USING HNSW (v)"))
    shapes = [("lateral", LATERAL)] + ([("vss_join", VSS_JOIN)] if kind == "hnsw" else [])
    for ef in efs:
        con.execute(f"SET hnsw_ef_search = {ef}")
        for shape, sql in shapes:
            plan = con.execute("EXPLAIN " + sql).fetchall()[0][1].upper()
            seconds, answers = timed_statement(con, sql, len(queries))
            result["runs"].append({"shape": shape, "ef": ef, "seconds": seconds, "answers": answers,
                                   "uses_index": "HNSW_INDEX" in plan.replace(" ", "_")})
    print(json.dumps(result))


def hnswlib_runs(data, queries, threads, efs):
    """hnswlib with the extension's defaults (M=16, ef_construction=128): batch knn_query per ef."""
    import hnswlib

    index = hnswlib.Index(space="l2", dim=DIM)
    index.init_index(max_elements=len(data), M=16, ef_construction=128, random_seed=SEED)
    index.set_num_threads(threads)
    build_s = timed(lambda: index.add_items(data, np.arange(len(data))))
    runs = []
    for ef in efs:
        index.set_ef(ef)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            labels, _ = index.knn_query(queries, k=K, num_threads=threads)
            best = min(best, time.perf_counter() - start)
        runs.append({"shape": "knn_query", "ef": ef, "seconds": best, "answers": labels.tolist()})
    return {"engine": "hnswlib", "version": hnswlib.__version__ if hasattr(hnswlib, "__version__") else "?",
            "create_index_s": build_s, "runs": runs}


def best_run(result, shape, truth):
    """The fastest run of a shape whose recall@10 reaches TARGET (else the most accurate), with its recall."""
    scored = []
    for run in result["runs"]:
        if run["shape"] != shape:
            continue
        recall = mean_recall(run["answers"], truth[: len(run["answers"])])
        scored.append((recall >= TARGET, -run["seconds"] if recall >= TARGET else recall, run, recall))
    _, _, run, recall = max(scored, key=lambda s: (s[0], s[1]))
    return run, recall


def report(args, results, truth):
    rows = [
        ("hnsw LATERAL join", results["hnsw"], "lateral"),
        ("hnsw vss_join", results["hnsw"], "vss_join"),
        ("hnswlib knn_query (batch)", results["hnswlib"], "knn_query"),
        ("vss 1.5.5 LATERAL join", results["vss"], "lateral"),
        ("exact LATERAL join", results["exact"], "lateral"),
    ]
    lines = [
        f"# Many queries in one statement ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}, {args.threads} threads. Data: {args.rows} x {DIM} clustered (seed {SEED}), l2, "
        f"{args.queries} queries in one statement (the exact join: its first {args.exact_queries}), k={K}, "
        f"M=16, ef_construction=128; each engine at the smallest ef of {args.ef} reaching recall@10 >= {TARGET} "
        f"against NumPy's exact answer. Command: `{command_line()}`.",
        "",
        "| engine | ef | queries | seconds | queries/s | recall@10 |",
        "|---|---|---|---|---|---|",
    ]
    qps = {}
    for name, result, shape in rows:
        run, recall = best_run(result, shape, truth)
        n = len(run["answers"])
        qps[name] = n / run["seconds"]
        lines.append(f"| {name} | {run['ef'] if run['ef'] is not None else '-'} | {n} | {run['seconds']:.3f} "
                     f"| {qps[name]:.0f} | {recall:.3f} |")
    lateral = qps["hnsw LATERAL join"]
    lines += [
        "",
        f"- LATERAL join / hnswlib batch: {lateral / qps['hnswlib knn_query (batch)']:.2f}x",
        f"- LATERAL join / vss 1.5.5 LATERAL join: {lateral / qps['vss 1.5.5 LATERAL join']:.1f}x",
        f"- LATERAL join / exact LATERAL join: {lateral / qps['exact LATERAL join']:.0f}x",
        f"- CREATE INDEX: hnsw {results['hnsw']['create_index_s']:.1f} s, vss {results['vss']['create_index_s']:.1f} s, "
        f"hnswlib add_items {results['hnswlib']['create_index_s']:.1f} s",
    ]
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-queries", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ef", default="32,48,64,80,96,128")
    ap.add_argument("--extension", type=pathlib.Path, default=EXTENSION)
    ap.add_argument("--worker", choices=("hnsw", "exact", "vss"), help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    efs = [int(x) for x in args.ef.split(",")]
    if args.worker:
        worker(args.worker, args.tmp, args.extension, args.threads, efs, args.exact_queries)
        return
    require_vss_and_extension(args.extension, "bench-batch")
    allv = clustered(args.rows + args.queries, DIM, seed=SEED)
    data, queries = allv[: args.rows], allv[args.rows:]
    truth = exact_top_k(data, queries).tolist()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        np.save(pathlib.Path(tmp) / "data.npy", data)
        np.save(pathlib.Path(tmp) / "queries.npy", queries)
        for kind, python in (("hnsw", sys.executable), ("exact", sys.executable), ("vss", VSS_PYTHON)):
            print(f"running {kind} ...", flush=True)
            worker_args = ["--worker", kind, "--tmp", tmp, "--extension", args.extension.resolve(),
                           "--threads", args.threads, "--ef", args.ef, "--exact-queries", args.exact_queries]
            results[kind] = worker_result(python, __spec__.name, worker_args, kind)
    print("running hnswlib ...", flush=True)
    results["hnswlib"] = hnswlib_runs(data, queries, args.threads, efs)
    write_report(REPORTS / "batch.md", report(args, results, truth))


if __name__ == "__main__":
    main()
