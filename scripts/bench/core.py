"""Core benchmark: this crate's HNSW vs hnswlib (PyPI) on the same seeded vectors, same run.

Datasets: 100k x 128 clustered and 50k x 384 clustered (1000 queries each, exact top-10 by
brute force). Both libraries use M=16, ef_construction=128. Measures build time with 1 and 2
threads, then single-thread QPS and recall@10 over an ef sweep. The crate's side is its Rust
benchmark driver, run as `cargo bench --quiet --bench core -- ARGS` (built on first use). Writes a
markdown table to bench-results/core.md and prints it.

    make bench-core            # or: .venv/bin/python -m scripts.bench.core [--quick]
"""
import argparse
import importlib.metadata
import json
import pathlib
import subprocess
import tempfile
import time

import hnswlib
import numpy as np

from scripts.common import K, REPORTS, ROOT, clustered, command_line, exact_top_k, machine, mean_recall, write_report

# The Rust driver reads its arguments after `--`; it ignores the `--bench` that cargo appends to them.
CORE_DRIVER = ["cargo", "bench", "--quiet", "--bench", "core", "--"]
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 256]
THREADS = [1, 2]
REPEATS = 3  # search passes per ef within a round; the fastest counts (both libraries)
ROUNDS = 3  # alternating search rounds per library


def run_ours_build(tmp, data, queries, truth):
    """Builds and saves the crate's index: build seconds per thread count, its SIMD kernels, the search command."""
    files = {}
    # The driver reads raw little-endian arrays: float32 vectors and uint32 ids.
    for name, arr in (("data", data), ("queries", queries), ("truth", truth.astype(np.uint32))):
        files[name] = tmp / f"{name}.bin"
        arr.tofile(files[name])
    base = [*CORE_DRIVER, "--data", str(files["data"]), "--queries", str(files["queries"]), "--truth",
            str(files["truth"]), "--dim", str(data.shape[1]), "--k", str(K)]
    saved = tmp / "index.hnsw"
    rows = run_json(base + ["--threads", ",".join(map(str, THREADS)), "--save", str(saved)])
    builds = {r["threads"]: r["seconds"] for r in rows if r["kind"] == "build"}
    simd = next(r["simd"] for r in rows if r["kind"] == "build")
    return builds, simd, base + ["--load", str(saved)]


def run_ours_search(cmd):
    """QPS and recall@10 of the crate's saved index per ef: {ef: (qps, recall)}."""
    rows = run_json(cmd + ["--ef", ",".join(map(str, EFS)), "--repeats", str(REPEATS)])
    return {r["ef"]: (r["qps"], r["recall"]) for r in rows if r["kind"] == "search"}


def run_json(cmd):
    """Runs the driver from the repository root: the JSON objects it printed, one a line."""
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def hnswlib_build(data):
    """Builds hnswlib's index with each thread count: build seconds per thread count, the last index."""
    builds, index = {}, None
    for threads in THREADS:
        index = hnswlib.Index(space="l2", dim=data.shape[1])
        index.init_index(max_elements=len(data), M=16, ef_construction=128, random_seed=100)
        start = time.perf_counter()
        index.add_items(data, np.arange(len(data)), num_threads=threads)
        builds[threads] = time.perf_counter() - start
    return builds, index


def hnswlib_search(index, queries, truth):
    """QPS (fastest of REPEATS passes) and recall@10 of hnswlib's index per ef: {ef: (qps, recall)}."""
    search = {}
    for ef in EFS:
        index.set_ef(max(ef, K))
        index.knn_query(queries[:100], k=K, num_threads=1)  # warm-up
        secs = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            labels, _ = index.knn_query(queries, k=K, num_threads=1)
            secs = min(secs, time.perf_counter() - start)
        search[ef] = (len(queries) / secs, mean_recall(labels, truth))
    return search


def merge_best(best, new):
    """Keeps the highest QPS per ef across rounds (recall is deterministic per built index)."""
    for ef, (qps, rec) in new.items():
        if ef not in best or qps > best[ef][0]:
            best[ef] = (qps, rec)


def best_at(search, target=0.95):
    """QPS at the smallest ef of the sweep that reaches the recall target, with that ef."""
    ok = sorted((ef, qps) for ef, (qps, rec) in search.items() if rec >= target)
    return (ok[0][1], ok[0][0]) if ok else None


def main():
    """Parses arguments, runs both libraries on each dataset, writes the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10x smaller datasets (smoke run)")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    datasets = [("clustered 100k x 128", 100_000 // scale, 128, 1), ("clustered 50k x 384", 50_000 // scale, 384, 2)]
    lines = [
        f"# Core benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}; hnswlib {importlib.metadata.version('hnswlib')}.",
        f"Command: `{command_line()}`. Both: M=16, ef_construction=128, k=10, 1000 queries, search single-threaded, "
        f"best of {ROUNDS} alternating rounds x {REPEATS} passes per ef.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = pathlib.Path(tmpdir)
        for name, n, dim, seed in datasets:
            allv = clustered(n + 1000, dim, seed)
            data, queries = allv[:n], allv[n:]
            truth = exact_top_k(data, queries)
            ours_build, simd, ours_cmd = run_ours_build(tmp, data, queries, truth)
            lib_build, lib_index = hnswlib_build(data)
            # Search sweeps alternate between the two libraries, so machine noise hits both alike.
            ours_search, lib_search = {}, {}
            for _ in range(ROUNDS):
                merge_best(ours_search, run_ours_search(ours_cmd))
                merge_best(lib_search, hnswlib_search(lib_index, queries, truth))
            section = len(lines)
            lines += [f"## {name} (kernels: {simd})", "",
                      "| | hnsw (ours) | hnswlib | ratio ours/hnswlib |", "|---|---|---|---|"]
            for t in THREADS:
                lines.append(f"| build, {t} thread(s), s | {ours_build[t]:.2f} | {lib_build[t]:.2f} | "
                             f"{ours_build[t] / lib_build[t]:.2f}x |")
            for ef in EFS:
                (oq, orc), (lq, lrc) = ours_search[ef], lib_search[ef]
                lines.append(f"| ef={ef}: QPS (recall@10) | {oq:.0f} ({orc:.3f}) | {lq:.0f} ({lrc:.3f}) | {oq / lq:.2f}x |")
            ob, lb = best_at(ours_search), best_at(lib_search)
            if ob and lb:
                lines.append(f"| QPS at the first ef with recall@10 >= 0.95 | {ob[0]:.0f} (ef={ob[1]}) | {lb[0]:.0f} (ef={lb[1]}) | "
                             f"{ob[0] / lb[0]:.2f}x |")
            lines.append("")
            print("\n".join(lines[section:]), flush=True)
    # Each dataset's section was printed when it finished.
    write_report(REPORTS / ("core-quick.md" if args.quick else "core.md"), lines, echo=False)


if __name__ == "__main__":
    main()
