"""Quantized indexes against float32, one run, one table file: seeded clustered rows (100k x 384 by
default, seed 7, 64 clusters; the queries are --queries more points of the same clusters, not stored
rows), metric l2sq, index defaults (M=16, ef_construction=128). Per quantization, in a file database
with 2 threads:
  - CREATE INDEX time;
  - index memory (pragma_hnsw_index_info's approx_memory_usage, what DuckDB's buffer pool counts);
  - file bytes the index adds (the file after CREATE INDEX + CHECKPOINT minus the table-only file);
  - per hnsw_ef_search in the sweep, from k x over-fetch (a search keeps at least that many
    candidates, so a smaller ef repeats it): recall@10 against NumPy's exact top 10 and p50/p99 of
    the SQL query (ORDER BY array_distance(v, ?) LIMIT 10, the vector bound as a parameter), and the
    p50 of the search alone from hnsw_benchmark (graph search plus, quantized, the exact re-rank);
    at the index's over-fetch, then at 16, 32, 64 (SET hnsw_overfetch) while recall@10 misses 0.95;
  - the first (over-fetch, ef) reaching recall@10 >= 0.95, and its latencies.
Ratios are against float32 in the same run. Writes bench-results/quantized.md (or --output).

    make bench-quantized   # or: .venv/bin/python -m scripts.bench.quantized
                           #     [--rows 100000] [--dim 384] [--queries 200] [--quantizations f32,int8,bit]
"""
import argparse
import pathlib
import statistics
import tempfile
import time

import numpy as np

from scripts.common import (K, REPORTS, clustered, command_line, connect, exact_top_k, extension_version,
                            file_mib, insert_vectors, knn_sql, machine, mean_recall, plan_uses_index,
                            search_latencies, write_report)

SEED = 7
EF_SWEEP = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
RECALL_TARGET = 0.95
OVERFETCH_SWEEP = (16, 32, 64)


def measure(quantization, data, queries, truth, workdir):
    """Builds one index in a fresh file database and measures it; returns a dict of results."""
    path = workdir / f"{quantization}.duckdb"
    con = connect(path, threads=2)
    insert_vectors(con, "items", np.arange(len(data)), data, create=True)
    con.execute("CHECKPOINT")
    table_mib = file_mib(path)
    options = "" if quantization == "f32" else f" WITH (quantization = '{quantization}')"
    start = time.perf_counter()
    con.execute(f"CREATE INDEX items_v ON items USING HNSW (v){options}")
    build_s = time.perf_counter() - start
    con.execute("CHECKPOINT")
    index_mib = file_mib(path) - table_mib
    memory, per_vector = con.execute(
        "SELECT approx_memory_usage, bytes_per_vector FROM pragma_hnsw_index_info()").fetchall()[0]
    dim = data.shape[1]
    sql = knn_sql(dim)
    assert plan_uses_index(con, sql, [queries[0].tolist()]), "the query does not use the index"
    con.execute("CREATE TEMP TABLE qs AS SELECT * FROM (SELECT unnest(?::FLOAT[][]) AS q)", [queries.tolist()])
    default = con.execute("SELECT overfetch FROM pragma_hnsw_index_info()").fetchall()[0][0]
    sweep = []
    # The index's over-fetch first; a larger one (SET hnsw_overfetch) only while the target is missed.
    for overfetch in [default] + [f for f in OVERFETCH_SWEEP if f > default and quantization != "f32"]:
        con.execute(f"SET hnsw_overfetch = {overfetch}")
        # A search keeps at least k x over-fetch candidates (ef is raised to that): smaller ef
        # values repeat the same search, so the sweep starts there.
        efs = [K * overfetch] + [e for e in EF_SWEEP if e > K * overfetch]
        core = {row[0]: row[1] for row in con.execute(
            f"SELECT ef, p50_ms FROM hnsw_benchmark('items_v', (SELECT q::FLOAT[{dim}] FROM qs), "
            f"ef := {efs})").fetchall()}
        reached = 0
        for ef in efs:
            con.execute(f"SET hnsw_ef_search = {ef}")
            run = search_latencies(lambda q: [r[0] for r in con.execute(sql, [q.tolist()]).fetchall()], queries)
            lat = sorted(run["latencies_ms"])
            sweep.append({"overfetch": overfetch, "ef": ef, "recall": mean_recall(run["answers"], truth),
                          "p50": statistics.median(lat), "p99": lat[int(0.99 * (len(lat) - 1))],
                          "core_p50": core[ef]})
            reached += sweep[-1]["recall"] >= RECALL_TARGET
            flat = len(sweep) >= 3 and all(p["overfetch"] == overfetch for p in sweep[-3:]) and \
                sweep[-1]["recall"] - sweep[-3]["recall"] < 0.002
            if reached >= 2 or flat:
                break  # past the target, or ef no longer helps at this over-fetch
        if reached:
            break
    con.close()
    at_target = next((p for p in sweep if p["recall"] >= RECALL_TARGET), None)
    return {"build_s": build_s, "memory": memory, "per_vector": per_vector, "index_mib": index_mib,
            "sweep": sweep, "at_target": at_target}


def ratio(value, base):
    return f"{value / base:.2f}x" if base else "-"


def report(args, results, version, elapsed):
    f32 = results.get("f32")
    lines = [f"# Quantized indexes: {args.rows:,} x {args.dim} clustered, l2sq, recall@10 target {RECALL_TARGET}",
             "", f"- command: `{command_line()}`", f"- machine: {machine()}", f"- extension {version}",
             f"- {args.queries} queries (not stored rows); {elapsed / 60:.1f} min", "",
             "| quantization | bytes/vector | index memory | file bytes added | CREATE INDEX (2 threads) "
             "| over-fetch, ef at target | recall@10 | SQL p50 | search p50 (hnsw_benchmark) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        t = r["at_target"]
        mem = f"{r['memory'] / 2**20:.1f} MiB"
        fil = f"{r['index_mib']:.1f} MiB"
        build = f"{r['build_s']:.1f} s"
        if f32 and name != "f32":
            mem += f" ({ratio(r['memory'], f32['memory'])})"
            fil += f" ({ratio(r['index_mib'], f32['index_mib'])})"
            build += f" ({ratio(r['build_s'], f32['build_s'])})"
        if t:
            p50, core = f"{t['p50']:.2f} ms", f"{t['core_p50']:.3f} ms"
            ft = f32["at_target"] if f32 else None
            if ft and name != "f32":
                p50 += f" ({ratio(t['p50'], ft['p50'])})"
                core += f" ({ratio(t['core_p50'], ft['core_p50'])})"
            cells = [f"{t['overfetch']}, {t['ef']}", f"{t['recall']:.3f}", p50, core]
        else:
            cells = ["not reached", f"{max(p['recall'] for p in r['sweep']):.3f}", "-", "-"]
        lines.append(f"| {name} | {r['per_vector']} | {mem} | {fil} | {build} | " + " | ".join(cells) + " |")
    lines += ["", "Sweep (over-fetch x ef: recall@10, SQL p50 / p99, search p50):", ""]
    for name, r in results.items():
        points = ", ".join(f"{p['overfetch']}x{p['ef']}: {p['recall']:.3f} {p['p50']:.2f}/{p['p99']:.2f} ms "
                           f"{p['core_p50']:.3f} ms" for p in r["sweep"])
        lines.append(f"- {name}: {points}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quantizations", default="f32,int8,bit")
    parser.add_argument("--output", type=pathlib.Path, default=REPORTS / "quantized.md")
    args = parser.parse_args()
    started = time.perf_counter()
    points = clustered(args.rows + args.queries, args.dim, seed=SEED)
    data, queries = points[: args.rows], points[args.rows:]
    truth = exact_top_k(data, queries, K)
    con = connect()
    version = extension_version(con, "hnsw")
    con.close()
    results = {}
    with tempfile.TemporaryDirectory(dir=REPORTS.parent) as tmp:
        for quantization in args.quantizations.split(","):
            results[quantization] = measure(quantization, data, queries, truth, pathlib.Path(tmp))
            print(quantization, results[quantization], flush=True)
    write_report(args.output, report(args, results, version, time.perf_counter() - started))


if __name__ == "__main__":
    main()
