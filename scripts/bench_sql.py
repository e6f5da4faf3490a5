#!/usr/bin/env python3
"""SQL benchmark: CREATE INDEX time and query latency through DuckDB, in one run, for
  - hnsw (this extension) on DuckDB 2.0.0,
  - exact search (no index) on DuckDB 2.0.0,
  - vss on DuckDB 1.5.5 (duckdb==1.5.5 + duckdb-extension-vss==1.5.5 from PyPI, in .venv-vss).
Data: 100k x 128 clustered, seeded; 200 queries from the same distribution; recall@10 against
the exact top-10 computed with NumPy. Query: SELECT id FROM items ORDER BY array_distance(v, q)
LIMIT 10, with q once as a literal (both engines parse the same text) and once as a prepared-
statement parameter (cheap to bind in 2.0.0, ~35 ms per FLOAT[n] list in the 1.5.5 client).
Writes bench-results/sql.md.

    make bench-sql          # or: .venv/bin/python scripts/bench_sql.py [--rows N] [--queries N]
"""
import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "build" / "release" / "hnsw.duckdb_extension"
VSS_PYTHON = ROOT / ".venv-vss" / "bin" / "python"
K = 10


def clustered(n, dim, seed, clusters=64):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32) * 4
    labels = rng.integers(0, clusters, size=n)
    return (centres[labels] + rng.normal(size=(n, dim)).astype(np.float32)).astype(np.float32)


def write_report(name, lines):
    """Writes a benchmark's report to bench-results/<name> and prints it."""
    out = ROOT / "bench-results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {out}")


def worker(kind, data_path, queries_path, threads):
    """Runs in the engine's own venv; prints one JSON object."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    data = np.load(data_path)
    queries = np.load(queries_path)
    dim = data.shape[1]
    if kind == "hnsw":
        con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{EXTENSION}'")
    elif kind == "vss":
        import duckdb_extension_vss

        path = pathlib.Path(duckdb_extension_vss.__file__).parent / "extensions" / f"v{duckdb.__version__}"
        con = duckdb.connect()
        con.execute(f"LOAD '{path / 'vss.duckdb_extension'}'")
    else:
        con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    items = pa.table({"id": np.arange(len(data)), "v": pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), dim)})
    con.register("items_arrow", items)
    con.execute(f"CREATE TABLE items AS SELECT id::INTEGER AS id, v::FLOAT[{dim}] AS v FROM items_arrow")
    con.unregister("items_arrow")
    result = {"engine": kind, "duckdb": duckdb.__version__}
    if kind != "exact":
        start = time.perf_counter()
        con.execute("CREATE INDEX idx ON items USING HNSW (v)")
        result["create_index_s"] = time.perf_counter() - start
    sqls = [f"SELECT id FROM items ORDER BY array_distance(v, {q.tolist()}::FLOAT[{dim}]) LIMIT {K}" for q in queries]
    prepared = f"SELECT id FROM items ORDER BY array_distance(v, ?::FLOAT[{dim}]) LIMIT {K}"
    plan = con.execute("EXPLAIN " + sqls[0]).fetchall()[0][1]
    result["plan_uses_index"] = "HNSW_INDEX_SCAN" in plan.upper().replace(" ", "_")
    for mode in ("literal", "param"):
        for i in range(5):  # warm-up
            run_query(con, mode, sqls[i], prepared, queries[i])
        latencies, answers = [], []
        for sql, q in zip(sqls, queries):
            start = time.perf_counter()
            rows = run_query(con, mode, sql, prepared, q)
            latencies.append(time.perf_counter() - start)
            answers.append([r[0] for r in rows])
        result[f"{mode}_latencies_ms"] = [t * 1000 for t in latencies]
        result[f"{mode}_answers"] = answers
    print(json.dumps(result))


def run_query(con, mode, sql, prepared, q):
    if mode == "literal":
        return con.execute(sql).fetchall()
    return con.execute(prepared, [q.tolist()]).fetchall()


def run_worker(python, kind, data_path, queries_path, threads):
    cmd = [str(python), __file__, "--worker", kind, "--data", str(data_path), "--queries-file", str(queries_path),
           "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--queries-file")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.queries_file, args.threads)
        return

    import numpy as np

    if not VSS_PYTHON.exists():
        sys.exit("missing .venv-vss: run `make bench-sql` (it installs duckdb==1.5.5 + duckdb-extension-vss)")
    allv = clustered(args.rows + args.queries, args.dim, seed=7)
    data, queries = allv[: args.rows], allv[args.rows :]
    d64 = data.astype(np.float64)
    norms = (d64**2).sum(axis=1)
    truth = [set(np.argsort(norms - 2 * d64 @ q.astype(np.float64))[:K].tolist()) for q in queries]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_path, queries_path = pathlib.Path(tmp) / "data.npy", pathlib.Path(tmp) / "queries.npy"
        np.save(data_path, data)
        np.save(queries_path, queries)
        for kind, python in (("exact", sys.executable), ("hnsw", sys.executable), ("vss", VSS_PYTHON)):
            print(f"running {kind} ...", flush=True)
            results[kind] = run_worker(python, kind, data_path, queries_path, args.threads)
    rows = {}
    for kind in ("hnsw", "vss", "exact"):
        r = results[kind]
        row = [r["duckdb"], r.get("create_index_s")]
        for mode in ("literal", "param"):
            lat = sorted(r[f"{mode}_latencies_ms"])
            row += [lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]]
        row.append(statistics.mean(len(set(a) & t) / K for a, t in zip(r["literal_answers"], truth)))
        row.append(r["plan_uses_index"])
        rows[kind] = row
    hnsw, vss, exact = rows["hnsw"], rows["vss"], rows["exact"]
    lines = [
        f"# SQL benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, SET threads={args.threads}. Data: {args.rows} x "
        f"{args.dim} clustered (seed 7), {args.queries} queries, k={K}, index defaults (M=16, ef_construction=128, "
        "ef_search=64). Command: `make bench-sql`.",
        "",
        "| engine | DuckDB | CREATE INDEX s | literal q: p50 ms | p99 ms | parameter q: p50 ms | p99 ms "
        "| recall@10 | index in plan |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, (version, create, lp50, lp99, pp50, pp99, recall, used) in rows.items():
        create_s = f"{create:.2f}" if create is not None else "-"
        lines.append(f"| {kind} | {version} | {create_s} | {lp50:.2f} | {lp99:.2f} | {pp50:.2f} | {pp99:.2f} "
                     f"| {recall:.3f} | {used} |")
    best_vss = min(vss[2], vss[4])
    lines += [
        "",
        f"- CREATE INDEX: hnsw / vss = {hnsw[1] / vss[1]:.2f}x",
        f"- p50, literal query vector: hnsw / vss = {hnsw[2] / vss[2]:.2f}x, hnsw / exact = {hnsw[2] / exact[2]:.3f}x",
        f"- p50, each engine's faster way to pass q: hnsw {min(hnsw[2], hnsw[4]):.2f} ms / vss {best_vss:.2f} ms "
        f"= {min(hnsw[2], hnsw[4]) / best_vss:.2f}x",
    ]
    write_report("sql.md", lines)


if __name__ == "__main__":
    main()
