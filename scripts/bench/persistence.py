"""Persistence benchmark: what an HNSW index costs on disk and on reopen, in one run, for
  - hnsw (this extension) on DuckDB 2.0.0,
  - vss on DuckDB 1.5.5 (duckdb==1.5.5 + duckdb-extension-vss==1.5.5 from PyPI, in .venv-vss),
each with SET hnsw_enable_experimental_persistence = true (a no-op for hnsw) in a fresh temp directory.
Data: 100k x 384 clustered, seeded; 20 queries from the same distribution.
  1. size of a file with the table only vs the same file after CREATE INDEX + CHECKPOINT;
  2. growth: 100 rounds of "insert 100 rows; CHECKPOINT" on the indexed file, then its size vs a
     fresh file with the same rows (table and index built at once), and the mean CHECKPOINT time;
  3. reopen in a new process: connect + LOAD + first indexed query (literal query vector) vs
     CREATE INDEX time, a second (warm) query, and whether EXPLAIN shows HNSW_INDEX_SCAN;
  4. recall@10 after reopen against the exact top-10 computed with NumPy (catches a broken index).
Every step runs in its own subprocess, so a crash only loses that step; errors land in the table.
Writes bench-results/persistence.md.

    make bench-persistence  # or: .venv/bin/python -m scripts.bench.persistence [--rows N] [--dim D]
                            #     [--rounds R] [--threads N] [--extension PATH]
"""
import argparse
import json
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import duckdb
import numpy as np

from scripts.common import (EXTENSION, K, REPORTS, VSS_PYTHON, clustered, command_line, connect, exact_top_k,
                            extension_version, file_mib, insert_vectors, knn_sql, machine, mean_recall,
                            plan_uses_index, require_vss_and_extension, timed, worker_json, write_report)

SEED = 7
QUERIES = 20
BATCH = 100
STEPS = ("sizes", "reopen", "growth")


def step_sizes(kind, tmp, data, rows, extension, threads):
    """Writes tmp/indexed.db: its size with the table only, CREATE INDEX time, and its size with the index."""
    path = tmp / "indexed.db"
    con = connect(path, kind, extension, threads=threads, persistent=True)
    insert_vectors(con, "items", np.arange(rows), data[:rows], create=True)
    con.execute("CHECKPOINT")
    con.close()
    result = {"table_mib": file_mib(path)}
    con = connect(path, kind, extension, threads=threads, persistent=True)
    result["create_index_s"] = timed(lambda: con.execute("CREATE INDEX idx ON items USING HNSW (v)"))
    con.execute("CHECKPOINT")
    result["extension_version"] = extension_version(con, kind)
    con.close()
    result["indexed_mib"] = file_mib(path)
    return result


def step_reopen(kind, tmp, queries, extension, threads):
    """Opens tmp/indexed.db in this fresh process: time to the first query's result, a warm query, plan, answers."""
    sqls = [knn_sql(queries.shape[1], q) for q in queries]
    start = time.perf_counter()
    con = connect(tmp / "indexed.db", kind, extension, threads=threads, persistent=True)
    con.execute(sqls[0]).fetchall()
    result = {"first_query_s": time.perf_counter() - start}
    start = time.perf_counter()
    con.execute(sqls[1]).fetchall()
    result["second_query_ms"] = (time.perf_counter() - start) * 1000
    result["plan_uses_index"] = plan_uses_index(con, sqls[0])
    result["answers"] = [[row[0] for row in con.execute(sql).fetchall()] for sql in sqls]
    con.close()
    return result


def step_growth(kind, tmp, data, rows, rounds, extension, threads):
    """Grows a copy of tmp/indexed.db by rounds x (BATCH rows; CHECKPOINT); builds a fresh file of the same rows."""
    grown = tmp / "grown.db"
    shutil.copyfile(tmp / "indexed.db", grown)
    con = connect(grown, kind, extension, threads=threads, persistent=True)
    checkpoint_times, pages_written, stored_pages = [], [], 0
    for first in range(rows, rows + rounds * BATCH, BATCH):
        insert_vectors(con, "items", np.arange(first, first + BATCH), data[first : first + BATCH])
        start = time.perf_counter()
        con.execute("CHECKPOINT")
        checkpoint_times.append(time.perf_counter() - start)
        if kind == "hnsw":  # only this extension reports its stored pages
            stored_pages, written = con.execute(
                "SELECT stored_pages, pages_written FROM pragma_hnsw_index_info()").fetchall()[0]
            pages_written.append(written)
    con.close()
    total = rows + rounds * BATCH
    fresh = tmp / "fresh.db"
    con = connect(fresh, kind, extension, threads=threads, persistent=True)
    insert_vectors(con, "items", np.arange(total), data[:total], create=True)
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    con.execute("CHECKPOINT")
    con.close()
    return {"grown_mib": file_mib(grown), "fresh_mib": file_mib(fresh),
            "checkpoint_ms": statistics.mean(checkpoint_times) * 1000 if checkpoint_times else 0.0,
            "pages_written": statistics.mean(pages_written) if pages_written else None,
            "stored_pages": stored_pages}


def worker(kind, step, tmp, rows, rounds, extension, threads):
    """Runs one step in the engine's own venv; prints one JSON object (with "error" if the step failed)."""
    tmp = pathlib.Path(tmp)
    data, queries = np.load(tmp / "data.npy"), np.load(tmp / "queries.npy")
    result = {"duckdb": duckdb.__version__}
    try:
        if step == "sizes":
            result.update(step_sizes(kind, tmp, data, rows, extension, threads))
        elif step == "reopen":
            result.update(step_reopen(kind, tmp, queries, extension, threads))
        else:
            result.update(step_growth(kind, tmp, data, rows, rounds, extension, threads))
    except Exception as error:  # a failing engine is a finding, not a reason to stop the run
        result["error"] = f"{type(error).__name__}: {error}"
    print(json.dumps(result))


def run_worker(python, kind, step, tmp, args):
    """Runs one step of one engine in a subprocess; a crash becomes an "error" entry."""
    worker_args = ["--worker", kind, "--step", step, "--tmp", tmp, "--rows", args.rows, "--rounds", args.rounds,
                   "--extension", args.extension.resolve(), "--threads", args.threads]
    return worker_json(python, __spec__.name, worker_args, step)


def run_engine(python, kind, data, queries, args):
    """Runs the steps of one engine in order in a fresh temp directory; later steps skip if sizes failed."""
    results = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-persistence-{kind}-") as tmp:
        np.save(pathlib.Path(tmp) / "data.npy", data)
        np.save(pathlib.Path(tmp) / "queries.npy", queries)
        for step in STEPS:
            print(f"running {kind} {step} ...", flush=True)
            if step != "sizes" and "error" in results["sizes"]:
                results[step] = {"error": "skipped: the sizes step failed"}
            else:
                results[step] = run_worker(python, kind, step, tmp, args)
    return results


def figures(truth, rounds):
    """Table rows in report order: (label, steps the figure needs, formatter over one engine's step results)."""
    def ratio(a, b):
        """a / b as 'N.NNx'."""
        return f"{a / b:.2f}x"

    def pages_figure(e):
        """Mean index pages a CHECKPOINT rewrote, of the pages stored (hnsw reports them, vss does not)."""
        growth = e["growth"]
        if growth.get("pages_written") is None:
            return "whole index (not reported)"
        return f"{growth['pages_written']:.1f} of {growth['stored_pages']}"

    def recall(e):
        """recall@10 of the answers after reopen."""
        return f"{mean_recall(e['reopen']['answers'], truth):.3f}"

    return [
        ("1. table-only file, MiB", ("sizes",), lambda e: f"{e['sizes']['table_mib']:.1f}"),
        ("1. same file with HNSW index, MiB", ("sizes",), lambda e: f"{e['sizes']['indexed_mib']:.1f}"),
        ("1. indexed / table-only", ("sizes",), lambda e: ratio(e["sizes"]["indexed_mib"], e["sizes"]["table_mib"])),
        ("1. CREATE INDEX, s", ("sizes",), lambda e: f"{e['sizes']['create_index_s']:.2f}"),
        (f"2. after {rounds} x (+{BATCH} rows; CHECKPOINT), MiB", ("growth",),
         lambda e: f"{e['growth']['grown_mib']:.1f}"),
        ("2. fresh file with the same rows, MiB", ("growth",), lambda e: f"{e['growth']['fresh_mib']:.1f}"),
        ("2. grown / fresh (target <= 1.2x)", ("growth",),
         lambda e: ratio(e["growth"]["grown_mib"], e["growth"]["fresh_mib"])),
        ("2. mean CHECKPOINT per round, ms", ("growth",), lambda e: f"{e['growth']['checkpoint_ms']:.1f}"),
        ("2. index pages rewritten per CHECKPOINT (mean, of all)", ("growth",), pages_figure),
        ("3. reopen: connect + LOAD + first query, s", ("reopen",), lambda e: f"{e['reopen']['first_query_s']:.3f}"),
        ("3. reopen first query / CREATE INDEX (target <= 0.1x)", ("sizes", "reopen"),
         lambda e: ratio(e["reopen"]["first_query_s"], e["sizes"]["create_index_s"])),
        ("3. second (warm) query, ms", ("reopen",), lambda e: f"{e['reopen']['second_query_ms']:.2f}"),
        ("3. HNSW_INDEX_SCAN in plan after reopen", ("reopen",), lambda e: str(e["reopen"]["plan_uses_index"])),
        (f"4. recall@10 after reopen ({QUERIES} queries)", ("reopen",), recall),
    ]


def cell(engine_results, steps, formatter):
    """One table cell: the formatted figure, or the error (or skip) that kept a needed step from producing it."""
    for step in steps:
        error = engine_results[step].get("error")
        if error:
            return error.replace("|", "\\|").replace("\n", " ")[:300]
    return formatter(engine_results)


def versions(results):
    """Each engine's extension and DuckDB versions, as its sizes step reported them ('?' where missing)."""
    return ", ".join(f"{kind} {results[kind]['sizes'].get('extension_version', '?')} on DuckDB "
                     f"{results[kind]['sizes'].get('duckdb', '?')}" for kind in ("hnsw", "vss"))


def main():
    """Parses arguments; runs one worker step, or every step of both engines and writes the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extension", type=pathlib.Path, default=EXTENSION)
    ap.add_argument("--worker", choices=("hnsw", "vss"))
    ap.add_argument("--step", choices=STEPS)
    ap.add_argument("--tmp")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.step, args.tmp, args.rows, args.rounds, args.extension.resolve(), args.threads)
        return

    require_vss_and_extension(args.extension, "bench-persistence")
    total = args.rows + args.rounds * BATCH
    allv = clustered(total + QUERIES, args.dim, seed=SEED)
    data, queries = allv[:total], allv[total:]
    truth = exact_top_k(data[: args.rows], queries)
    results = {kind: run_engine(python, kind, data, queries, args)
               for kind, python in (("hnsw", sys.executable), ("vss", VSS_PYTHON))}
    lines = [
        f"# Persistence benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine()}, SET threads={args.threads}. "
        f"Data: {args.rows} x {args.dim} clustered (seed {SEED}), growth {args.rounds} x {BATCH} rows, {QUERIES} "
        f"queries, k={K}, index defaults. Versions: {versions(results)}. Command: `{command_line()}`.",
        "",
        "| figure | hnsw | vss |",
        "|---|---|---|",
    ]
    for label, steps, formatter in figures(truth, args.rounds):
        hnsw, vss = (cell(results[kind], steps, formatter) for kind in ("hnsw", "vss"))
        lines.append(f"| {label} | {hnsw} | {vss} |")
    write_report(REPORTS / "persistence.md", lines)


if __name__ == "__main__":
    main()
