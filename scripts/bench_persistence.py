#!/usr/bin/env python3
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

    make bench-persistence  # or: .venv/bin/python scripts/bench_persistence.py [--rows N] [--dim D]
                            #     [--rounds R] [--extension PATH]
"""
import argparse
import json
import os
import pathlib
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_sql import clustered, write_report  # noqa: E402,F401  (one data generator for every benchmark)

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "build" / "release" / "hnsw.duckdb_extension"
VSS_PYTHON = ROOT / ".venv-vss" / "bin" / "python"
K = 10
QUERIES = 20
BATCH = 100
STEPS = ("sizes", "reopen", "growth")


def open_database(kind, path, extension, threads):
    """Connects to the database file and loads the engine's HNSW extension with persistence enabled."""
    import duckdb

    if kind == "hnsw":
        con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{extension}'")
    else:
        import duckdb_extension_vss

        vss = pathlib.Path(duckdb_extension_vss.__file__).parent / "extensions" / f"v{duckdb.__version__}"
        con = duckdb.connect(str(path))
        con.execute(f"LOAD '{vss / 'vss.duckdb_extension'}'")
    con.execute("SET hnsw_enable_experimental_persistence = true")
    con.execute(f"SET threads = {threads}")
    return con


def add_rows(con, ids, vectors, create):
    """Copies (id, vector) rows into items through a pyarrow table, creating items when asked."""
    import pyarrow as pa

    dim = vectors.shape[1]
    batch = pa.table({"id": ids, "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)})
    con.register("batch_arrow", batch)
    select = f"SELECT id::INTEGER AS id, v::FLOAT[{dim}] AS v FROM batch_arrow"
    con.execute(f"CREATE TABLE items AS {select}" if create else f"INSERT INTO items {select}")
    con.unregister("batch_arrow")


def file_mib(path):
    """Size of a database file plus its WAL (if any) in MiB."""
    wal = pathlib.Path(f"{path}.wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 2**20


def step_sizes(kind, tmp, data, rows, extension, threads):
    """Writes tmp/indexed.db: its size with the table only, CREATE INDEX time, and its size with the index."""
    import numpy as np

    path = tmp / "indexed.db"
    con = open_database(kind, path, extension, threads)
    add_rows(con, np.arange(rows), data[:rows], create=True)
    con.execute("CHECKPOINT")
    con.close()
    result = {"table_mib": file_mib(path)}
    con = open_database(kind, path, extension, threads)
    start = time.perf_counter()
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    result["create_index_s"] = time.perf_counter() - start
    con.execute("CHECKPOINT")
    result["extension_version"] = con.execute(
        "SELECT extension_version FROM duckdb_extensions() WHERE extension_name = ?", [kind]).fetchone()[0]
    con.close()
    result["indexed_mib"] = file_mib(path)
    return result


def step_reopen(kind, tmp, queries, extension, threads):
    """Opens tmp/indexed.db in this fresh process: time to the first query's result, a warm query, plan, answers."""
    dim = queries.shape[1]
    sqls = [f"SELECT id FROM items ORDER BY array_distance(v, {q.tolist()}::FLOAT[{dim}]) LIMIT {K}" for q in queries]
    start = time.perf_counter()
    con = open_database(kind, tmp / "indexed.db", extension, threads)
    con.execute(sqls[0]).fetchall()
    result = {"first_query_s": time.perf_counter() - start}
    start = time.perf_counter()
    con.execute(sqls[1]).fetchall()
    result["second_query_ms"] = (time.perf_counter() - start) * 1000
    plan = con.execute("EXPLAIN " + sqls[0]).fetchall()[0][1]
    result["plan_uses_index"] = "HNSW_INDEX_SCAN" in plan.upper().replace(" ", "_")
    result["answers"] = [[row[0] for row in con.execute(sql).fetchall()] for sql in sqls]
    con.close()
    return result


def step_growth(kind, tmp, data, rows, rounds, extension, threads):
    """Grows a copy of tmp/indexed.db by rounds x (BATCH rows; CHECKPOINT); builds a fresh file of the same rows."""
    import numpy as np

    grown = tmp / "grown.db"
    shutil.copyfile(tmp / "indexed.db", grown)
    con = open_database(kind, grown, extension, threads)
    checkpoint_times, pages_written, stored_pages = [], [], 0
    for first in range(rows, rows + rounds * BATCH, BATCH):
        add_rows(con, np.arange(first, first + BATCH), data[first : first + BATCH], create=False)
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
    con = open_database(kind, fresh, extension, threads)
    add_rows(con, np.arange(total), data[:total], create=True)
    con.execute("CREATE INDEX idx ON items USING HNSW (v)")
    con.execute("CHECKPOINT")
    con.close()
    return {"grown_mib": file_mib(grown), "fresh_mib": file_mib(fresh),
            "checkpoint_ms": statistics.mean(checkpoint_times) * 1000 if checkpoint_times else 0.0,
            "pages_written": statistics.mean(pages_written) if pages_written else None,
            "stored_pages": stored_pages}


def worker(kind, step, tmp, rows, rounds, extension, threads):
    """Runs one step in the engine's own venv; prints one JSON object (with "error" if the step failed)."""
    import duckdb
    import numpy as np

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
    cmd = [str(python), __file__, "--worker", kind, "--step", step, "--tmp", str(tmp), "--rows", str(args.rows),
           "--rounds", str(args.rounds), "--extension", str(args.extension), "--threads", str(args.threads)]
    return step_result(step, subprocess.run(cmd, capture_output=True, text=True))


def step_result(step, out):
    """The JSON line a finished worker printed, or an "error" entry saying how it ended."""
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        how = f"killed by signal {-out.returncode}" if out.returncode < 0 else f"exited with code {out.returncode}"
        return {"error": f"{step} step {how}: {tail}"}
    return json.loads(lines[-1])


def run_engine(python, kind, data, queries, args):
    """Runs the steps of one engine in order in a fresh temp directory; later steps skip if sizes failed."""
    import numpy as np

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


def cpu_model():
    """CPU model name from /proc/cpuinfo, or the platform's processor string."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def figures(truth, rounds):
    """Table rows in report order: (label, steps the figure needs, formatter over one engine's step results)."""
    def ratio(a, b):
        return f"{a / b:.2f}x"

    def pages_figure(e):
        growth = e["growth"]
        if growth.get("pages_written") is None:
            return "whole index (not reported)"
        return f"{growth['pages_written']:.1f} of {growth['stored_pages']}"

    def recall(e):
        return f"{statistics.mean(len(set(a) & t) / K for a, t in zip(e['reopen']['answers'], truth)):.3f}"

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

    import numpy as np

    if not VSS_PYTHON.exists():
        sys.exit("missing .venv-vss: run `make bench-persistence` (it installs duckdb==1.5.5 + duckdb-extension-vss)")
    if not args.extension.exists():
        sys.exit(f"missing {args.extension}: run `make release` or pass --extension")
    total = args.rows + args.rounds * BATCH
    allv = clustered(total + QUERIES, args.dim, seed=7)
    data, queries = allv[:total], allv[total:]
    initial = data[: args.rows].astype(np.float64)
    norms = (initial**2).sum(axis=1)
    truth = [set(np.argsort(norms - 2 * initial @ q.astype(np.float64))[:K].tolist()) for q in queries]
    results = {kind: run_engine(python, kind, data, queries, args)
               for kind, python in (("hnsw", sys.executable), ("vss", VSS_PYTHON))}
    command = shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])
    lines = [
        f"# Persistence benchmark ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} cores, SET threads={args.threads}. "
        f"Data: {args.rows} x {args.dim} clustered (seed 7), growth {args.rounds} x {BATCH} rows, {QUERIES} "
        f"queries, k={K}, index defaults. Versions: {versions(results)}. Command: `{command}`.",
        "",
        "| figure | hnsw | vss |",
        "|---|---|---|",
    ]
    for label, steps, formatter in figures(truth, args.rounds):
        hnsw, vss = (cell(results[kind], steps, formatter) for kind in ("hnsw", "vss"))
        lines.append(f"| {label} | {hnsw} | {vss} |")
    write_report("persistence.md", lines)


if __name__ == "__main__":
    main()
