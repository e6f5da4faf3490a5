"""Comparison benchmark, one run, one table file, for five engines:
  - hnsw: this extension on the default DuckDB (the .venv's),
  - hnsw-1.5.5: this extension built for DuckDB 1.5.5, run in .venv-vss: the same DuckDB as vss,
  - exact: no index, the default DuckDB (brute-force ORDER BY array_distance ... LIMIT 10),
  - vss: duckdb==1.5.5 + duckdb-extension-vss==1.5.5 from PyPI, in .venv-vss,
  - hnswlib: the Python package (raw library, no DuckDB).
Datasets (seed 7; rows times --scale): 100k x 128 clustered, 100k x 128 Gaussian, 50k x 384 clustered;
--queries queries per dataset from the same distribution; ground truth: NumPy exact top-10 (float64).
Metric l2sq, index defaults (M=16, ef_construction=128, ef_search=64; hnswlib given M=16,
ef_construction=128). Per engine and dataset, each step in its own subprocess (a failure lands in
the table): build (CREATE INDEX with 1 thread, dropped, then with 2 threads on a file database kept
for the later steps; index memory; file size after CHECKPOINT; plan check), sweep (p50/p99 latency,
QPS and recall@10 for hnsw_ef_search in 16..256), insert (rows/s of one INSERT ... SELECT from an
Arrow table of 5000 new rows x --scale, 2 threads). Then rows/s of every bulk-loading path
(python -m scripts.load.bulk_load --bench). Writes bench-results/bench.md and prints it.

    make bench    # or: .venv/bin/python -m scripts.bench.compare
                  #     [--datasets clustered-128,gaussian-128,clustered-384] [--scale 1.0] [--queries 200]
                  #     [--output PATH] [--extension PATH] [--extension-155 PATH]
"""
import argparse
import importlib.metadata
import json
import pathlib
import statistics
import sys
import tempfile
import time

import duckdb
import numpy as np

from scripts.common import (EXTENSION, K, REPORTS, VSS_PYTHON, WARMUP_QUERIES, clustered, command_line, connect,
                            exact_top_k, extension_version, file_mib, gaussian, insert_vectors, knn_sql, machine,
                            mean_recall, plan_uses_index, require_vss_and_extension, run_module, search_latencies,
                            timed, worker_json, write_report)

OUTPUT = REPORTS / "bench.md"
SEED = 7
EF_SWEEP = (16, 32, 64, 128, 256)
INSERT_ROWS = 5000
RECALL_TARGET = 0.95
STEP_TIMEOUT_S = 900
DATASETS = {  # name: (rows at scale 1, dimensions, distribution)
    "clustered-128": (100_000, 128, "clustered"),
    "gaussian-128": (100_000, 128, "gaussian"),
    "clustered-384": (50_000, 384, "clustered"),
}
ENGINES = ("hnsw", "hnsw-1.5.5", "vss", "hnswlib", "exact")
ON_155 = ("hnsw-1.5.5", "vss")  # engines run by .venv-vss's DuckDB 1.5.5
EXTENSION_155 = EXTENSION.parent / "v1.5.5" / "hnsw.duckdb_extension"
STEPS = ("build", "sweep", "insert")


def vectors(distribution, n, dim):
    """n seeded float32 vectors of the dataset's distribution."""
    if distribution == "clustered":
        return clustered(n, dim, seed=SEED)
    return gaussian(n, dim, seed=SEED)


def attempt(result, key, measure):
    """Stores measure() under key, or the exception as an error string (a failure is a finding)."""
    try:
        result[key] = measure()
    except Exception as error:
        result[key] = f"error: {type(error).__name__}: {error}"


def query_form(kind, dim):
    """The engine's query and how to bind one query vector: a prepared parameter on 2.x, a literal on 1.5.5."""
    if kind in ON_155:
        return lambda q: (knn_sql(dim, q), [])
    sql = knn_sql(dim)
    return lambda q: (sql, [q.tolist()])


def engine_of(kind):
    """The connect() engine of a benchmark engine: both hnsw builds load the extension file they are given."""
    return "hnsw" if kind == "hnsw-1.5.5" else kind


def index_memory_mib(con):
    """approx_memory_usage of index idx from pragma_hnsw_index_info(), whatever the engine's other columns."""
    cursor = con.execute("SELECT * FROM pragma_hnsw_index_info()")
    columns = [d[0] for d in cursor.description]
    if "approx_memory_usage" not in columns:
        raise RuntimeError(f"pragma_hnsw_index_info() has no approx_memory_usage; columns: {', '.join(columns)}")
    rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
    return next(r["approx_memory_usage"] for r in rows if r["index_name"] == "idx") / 2**20


def rebuild_index(con):
    """Drops index idx if present, then seconds taken by CREATE INDEX idx."""
    con.execute("DROP INDEX IF EXISTS idx")
    return timed(lambda: con.execute("CREATE INDEX idx ON items USING HNSW (v)"))


def duckdb_build(kind, tmp, extension):
    """Table on a file database; CREATE INDEX with 1 thread (dropped), then 2 threads; memory, file size, plan."""
    data, queries = np.load(tmp / "data.npy"), np.load(tmp / "queries.npy")
    result = {"duckdb": duckdb.__version__}
    path = tmp / "items.db"
    con = connect(path, engine_of(kind), extension, threads=2, persistent=True)
    insert_vectors(con, "items", np.arange(len(data)), data, create=True)
    con.execute("CHECKPOINT")
    result["table_mib"] = file_mib(path)
    if kind != "exact":
        result["extension_version"] = extension_version(con, engine_of(kind))
        for threads in (1, 2):
            con.execute(f"SET threads = {threads}")
            attempt(result, f"build_{threads}t_s", lambda: rebuild_index(con))
        attempt(result, "memory_mib", lambda: index_memory_mib(con))
        con.execute("CHECKPOINT")
    result["file_mib"] = file_mib(path)
    sql, params = query_form(kind, data.shape[1])(queries[0])
    result["plan_uses_index"] = plan_uses_index(con, sql, params)
    con.close()
    if kind == "vss":
        result["vss_package"] = importlib.metadata.version("duckdb-extension-vss")
    return result


def duckdb_sweep(kind, tmp, extension):
    """Reopens the built file; latencies and answers for each hnsw_ef_search (one run without index for exact)."""
    queries = np.load(tmp / "queries.npy")
    con = connect(tmp / "items.db", engine_of(kind), extension, threads=2, persistent=True)
    form = query_form(kind, queries.shape[1])

    def search(q):
        """Ids of the top-K answer to one query vector."""
        sql, params = form(q)
        return [row[0] for row in con.execute(sql, params).fetchall()]

    if kind == "exact":
        return {"sweep": {"-": search_latencies(search, queries)}}
    sweep = {}
    for ef in EF_SWEEP:
        con.execute(f"SET hnsw_ef_search = {ef}")
        attempt(sweep, str(ef), lambda: search_latencies(search, queries))
    return {"sweep": sweep}


def duckdb_insert(kind, tmp, extension):
    """Reopens the built file; rows/s of one INSERT ... SELECT of the new rows from an Arrow table (2 threads)."""
    extra = np.load(tmp / "extra.npy")
    con = connect(tmp / "items.db", engine_of(kind), extension, threads=2, persistent=True)
    first_id = con.execute("SELECT count(*) FROM items").fetchall()[0][0]
    seconds = timed(lambda: insert_vectors(con, "items", np.arange(first_id, first_id + len(extra)), extra))
    con.close()
    return {"insert_rows_per_s": len(extra) / seconds}


def hnswlib_build(tmp):
    """add_items with 1, then 2 threads, each into a fresh index; saves the latter (its size: memory and file)."""
    import hnswlib  # not installed in .venv-vss, which imports this module for its workers

    data = np.load(tmp / "data.npy")
    result = {"hnswlib": importlib.metadata.version("hnswlib")}
    for threads in (1, 2):
        index = hnswlib.Index(space="l2", dim=data.shape[1])
        index.init_index(max_elements=len(data), M=16, ef_construction=128, random_seed=SEED)
        attempt(result, f"build_{threads}t_s",
                lambda: timed(lambda: index.add_items(data, np.arange(len(data)), num_threads=threads)))
    path = tmp / "hnswlib.bin"
    index.save_index(str(path))
    result["memory_mib"] = result["file_mib"] = path.stat().st_size / 2**20
    return result


def hnswlib_sweep(tmp):
    """Loads the saved index; latencies and answers of single-query knn_query for each ef."""
    import hnswlib

    queries = np.load(tmp / "queries.npy")
    index = hnswlib.Index(space="l2", dim=queries.shape[1])
    index.load_index(str(tmp / "hnswlib.bin"))
    sweep = {}
    for ef in EF_SWEEP:
        index.set_ef(ef)
        attempt(sweep, str(ef), lambda: search_latencies(
            lambda q: index.knn_query(q, k=K, num_threads=1)[0][0], queries))
    return {"sweep": sweep}


def hnswlib_insert(tmp):
    """Loads the saved index with room for the new rows; rows/s of add_items with 2 threads."""
    import hnswlib

    extra = np.load(tmp / "extra.npy")
    index = hnswlib.Index(space="l2", dim=extra.shape[1])
    index.load_index(str(tmp / "hnswlib.bin"))
    first_id = index.get_current_count()
    index.resize_index(first_id + len(extra))
    seconds = timed(lambda: index.add_items(extra, np.arange(first_id, first_id + len(extra)), num_threads=2))
    return {"insert_rows_per_s": len(extra) / seconds}


def worker(kind, step, tmp, extension):
    """Runs one step of one engine in the engine's venv; prints one JSON object ("error" if the step failed)."""
    tmp = pathlib.Path(tmp)
    steps = {
        "build": lambda: hnswlib_build(tmp) if kind == "hnswlib" else duckdb_build(kind, tmp, extension),
        "sweep": lambda: hnswlib_sweep(tmp) if kind == "hnswlib" else duckdb_sweep(kind, tmp, extension),
        "insert": lambda: hnswlib_insert(tmp) if kind == "hnswlib" else duckdb_insert(kind, tmp, extension),
    }
    try:
        result = steps[step]()
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result))


def run_worker(kind, step, tmp, extensions):
    """Runs one step of one engine in a subprocess; a crash or timeout becomes an "error" entry."""
    python = VSS_PYTHON if kind in ON_155 else sys.executable
    extension = extensions[1] if kind == "hnsw-1.5.5" else extensions[0]
    worker_args = ["--worker", kind, "--step", step, "--tmp", tmp, "--extension", extension]
    return worker_json(python, __spec__.name, worker_args, step, timeout=STEP_TIMEOUT_S)


def run_engine(kind, tmp, extensions):
    """Runs the steps of one engine in order in its own directory; later steps skip if the build step failed."""
    engine_dir = tmp / kind
    engine_dir.mkdir()
    for name in ("data.npy", "extra.npy", "queries.npy"):
        (engine_dir / name).symlink_to(tmp / name)
    results = {}
    for step in STEPS:
        print(f"  {kind} {step} ...", end=" ", flush=True)
        start = time.perf_counter()
        if step != "build" and "error" in results["build"]:
            results[step] = {"error": "skipped: the build step failed"}
        else:
            results[step] = run_worker(kind, step, engine_dir, extensions)
        print(f"{time.perf_counter() - start:.1f} s", flush=True)
    return results


def run_dataset(name, scale, query_count, extensions):
    """Generates one dataset and its ground truth, runs every engine on it; returns (shape, truth, results)."""
    base_rows, dim, distribution = DATASETS[name]
    rows = max(K, round(base_rows * scale))
    extra_rows = max(1, round(INSERT_ROWS * scale))
    allv = vectors(distribution, rows + extra_rows + query_count, dim)
    data, extra, queries = allv[:rows], allv[rows : rows + extra_rows], allv[rows + extra_rows :]
    truth = exact_top_k(data, queries)
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        tmp = pathlib.Path(tmp)
        for file_name, array in (("data.npy", data), ("extra.npy", extra), ("queries.npy", queries)):
            np.save(tmp / file_name, array)
        results = {}
        for kind in ENGINES:
            results[kind] = run_engine(kind, tmp, extensions)
    return {"rows": rows, "dim": dim, "distribution": distribution, "extra_rows": extra_rows}, truth, results


def figure(engine, step, key):
    """One figure of one engine: the value, or an error string from the step or the figure itself."""
    result = engine[step]
    if "error" in result:
        return f"error: {result['error']}"
    return result.get(key)


def fmt(value, spec, errors):
    """A table cell: a number formatted by spec, '-' for no value, or 'error [n]' with the message kept in errors."""
    if value is None:
        return "-"
    if isinstance(value, str):
        message = value.replace("|", "\\|").replace("\n", " ")[:400]
        if message not in errors:
            errors.append(message)
        return f"error [{errors.index(message) + 1}]"
    return format(value, spec)


def sweep_points(results, truth):
    """Per engine, its sweep points in ef order: dicts of ef and recall, p50, p99, qps, or of ef and error."""
    points = {}
    for kind in ENGINES:
        sweep = figure(results[kind], "sweep", "sweep")
        if isinstance(sweep, str):
            points[kind] = [{"ef": "-", "error": sweep}]
            continue
        points[kind] = []
        for ef, run in sweep.items():
            if isinstance(run, str):
                points[kind].append({"ef": ef, "error": run})
                continue
            latencies = run["latencies_ms"]
            points[kind].append({
                "ef": ef,
                "recall": mean_recall(run["answers"], truth),
                "p50": float(np.percentile(latencies, 50)),
                "p99": float(np.percentile(latencies, 99)),
                "qps": 1000 / statistics.mean(latencies),
            })
    return points


def dataset_section(name, shape, queries, results, points):
    """Markdown for one dataset: a build/size table and a sweep table."""
    lines = [
        f"## {name}: {shape['rows']} x {shape['dim']} {shape['distribution']}, {queries} queries, "
        f"insert {shape['extra_rows']} rows",
        "",
        "| engine | build 1t s | build 2t s | memory MiB | file MiB | HNSW_INDEX_SCAN in plan | insert rows/s |",
        "|---|---|---|---|---|---|---|",
    ]
    errors = []
    for kind in ENGINES:
        engine = results[kind]
        file_key = "table_mib" if kind == "exact" else "file_mib"
        plan = "n/a" if kind == "hnswlib" else fmt(figure(engine, "build", "plan_uses_index"), "", errors)
        cells = [fmt(figure(engine, "build", key), spec, errors)
                 for key, spec in (("build_1t_s", ".2f"), ("build_2t_s", ".2f"), ("memory_mib", ".1f"),
                                   (file_key, ".1f"))]
        cells += [plan, fmt(figure(engine, "insert", "insert_rows_per_s"), ",.0f", errors)]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += ["", "| engine | ef | recall@10 | p50 ms | p99 ms | QPS |", "|---|---|---|---|---|---|"]
    for kind in ENGINES:
        for point in points[kind]:
            if "error" in point:
                lines.append(f"| {kind} | {point['ef']} | {fmt(point['error'], '', errors)} | | | |")
            else:
                lines.append(f"| {kind} | {point['ef']} | {point['recall']:.3f} | {point['p50']:.2f} "
                             f"| {point['p99']:.2f} | {point['qps']:,.0f} |")
    if errors:
        lines += [""] + [f"[{i}] {message}  " for i, message in enumerate(errors, 1)]
    return lines


def ratio(a, b):
    """a / b as 'N.NNx', or 'n/a' when either is missing (an error or no value)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return f"{a / b:.2f}x"
    return "n/a"


PAIRS = (("hnsw", "vss"), ("hnsw", "hnswlib"), ("hnsw-1.5.5", "vss"))  # (subject, peer) rows of the ratio table


def ratio_rows(name, results, points):
    """Ratio table rows for one dataset: each (subject, peer) of PAIRS."""
    exact_p50 = points["exact"][0].get("p50")

    def at_target(kind):
        """p50 at the smallest ef reaching RECALL_TARGET, and its description (or "not reached")."""
        point = next((p for p in points[kind] if p.get("recall", 0) >= RECALL_TARGET), None)
        if point is None:
            return None, "n/a (error)" if all("error" in p for p in points[kind]) else "not reached"
        return point["p50"], f"ef={point['ef']}: {point['p50']:.2f} ms ({ratio(exact_p50, point['p50'])} vs exact)"

    def build_ratio(key, subject, peer):
        """subject / peer for one build-step figure."""
        return ratio(figure(results[subject], "build", key), figure(results[peer], "build", key))

    rows = []
    for subject, peer in PAIRS:
        subject_p50, subject_text = at_target(subject)
        peer_p50, peer_text = at_target(peer)
        rows.append(f"| {name} | {subject} | {peer} | {build_ratio('build_2t_s', subject, peer)} "
                    f"| {build_ratio('memory_mib', subject, peer)} | {subject_text} | {peer_text} "
                    f"| {ratio(subject_p50, peer_p50)} |")
    return rows


def versions(sections):
    """Versions of DuckDB, the hnsw extension, vss and hnswlib, from the first build step that reported them."""
    def first(kind, key):
        """The value a build step of the engine reported under key first, or '?'."""
        for _, _, _, results, _ in sections:
            value = results[kind]["build"].get(key)
            if value is not None:
                return value
        return "?"

    return (f"DuckDB {first('hnsw', 'duckdb')} with hnsw {first('hnsw', 'extension_version')}; "
            f"DuckDB {first('hnsw-1.5.5', 'duckdb')} with hnsw {first('hnsw-1.5.5', 'extension_version')}; "
            f"DuckDB {first('vss', 'duckdb')} with vss {first('vss', 'vss_package')} "
            f"(extension_version {first('vss', 'extension_version')}); hnswlib {first('hnswlib', 'hnswlib')}")


def report(sections, args, seconds):
    """The whole markdown report."""
    lines = [
        f"# HNSW comparison benchmark ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"Machine: {machine()}. Versions: {versions(sections)}. "
        f"Command: `{command_line()}` (scale {args.scale}, {seconds / 60:.1f} min).",
        "",
        f"Seed {SEED}; metric l2sq; k={K}; index defaults M=16, ef_construction=128, ef_search=64 (hnswlib given "
        "M=16, ef_construction=128). Ground truth: NumPy exact top-10 in float64.",
        "",
        "- build: CREATE INDEX with SET threads = 1 (then dropped) and SET threads = 2 on a file database, which "
        "the later steps reopen; hnswlib: add_items(num_threads=1 / 2) into a fresh index each.",
        "- memory: approx_memory_usage of pragma_hnsw_index_info() after the 2-thread build (vss counts whole "
        "allocator blocks: ~20 MiB even for a tiny index); hnswlib: size of its save_index file (vectors + graph, the layout it "
        "holds in memory), used as a proxy.",
        "- file: DuckDB file (+ WAL) after CHECKPOINT with the index (vss with SET "
        "hnsw_enable_experimental_persistence = true); exact: the table-only file; hnswlib: the save_index file.",
        "- hnsw-1.5.5: this extension built for DuckDB 1.5.5 (make DUCKDB_VERSION=1.5.5), run by .venv-vss's "
        "DuckDB 1.5.5 like vss and queried like vss (literal query vector).",
        "- queries: one client, one query at a time, SET threads = 2. hnsw and exact: `SELECT id FROM items ORDER "
        "BY array_distance(v, ?::FLOAT[d]) LIMIT 10` with the query as a prepared parameter; vss: the same with the "
        "query vector as a literal `[...]::FLOAT[d]` (DuckDB 1.5.5's Python client binds a FLOAT[d] list parameter "
        "in ~35 ms, so literals are its fast path; hnsw-1.5.5 is queried the same way); hnswlib: knn_query(q, k=10, num_threads=1). ef = SET "
        f"hnsw_ef_search / set_ef; {WARMUP_QUERIES} untimed warm-up queries per ef; QPS = 1000 / mean latency (ms).",
        "- insert: one INSERT INTO items SELECT ... FROM an Arrow table of new rows (new ids, same distribution) "
        "into the indexed table with SET threads = 2 (exact: no index); hnswlib: add_items(num_threads=2).",
        "",
    ]
    for name, shape, queries, results, points in sections:
        lines += dataset_section(name, shape, queries, results, points) + [""]
    lines += [
        "## Ratios",
        "",
        f"subject / peer (below 1x: the subject is smaller or faster). hnsw-1.5.5 vs vss: the same DuckDB 1.5.5, "
        f"same process type, same query form. At target: the smallest swept ef with recall@10 >= "
        f"{RECALL_TARGET}, its p50 and the speed-up of that p50 over exact's p50.",
        "",
        "| dataset | subject | peer | build 2t | memory | subject at target | peer at target "
        "| p50 at target (subject / peer) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, _, _, results, points in sections:
        lines += ratio_rows(name, results, points)
    return "\n".join(lines) + "\n"


def bulk_loading_section(scale):
    """Rows/s of each way to load 384-d embeddings (python -m scripts.load.bulk_load --bench), as markdown."""
    rows = max(2_000, int(200_000 * scale))
    print(f"bulk loading, {rows} rows ...", flush=True)
    out = run_module(sys.executable, "scripts.load.bulk_load", ["--bench", "--rows", rows, "--dim", 384])
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return f"\n## Bulk loading\n\nfailed: {tail}\n"
    return (f"\n## Bulk loading: {rows} rows x FLOAT[384] (`python -m scripts.load.bulk_load --bench`)\n\n"
            f"{out.stdout.strip()}\n")


def main():
    """Parses arguments; runs one worker step, or the whole benchmark and writes the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma list of " + ", ".join(DATASETS))
    ap.add_argument("--scale", type=float, default=1.0, help="multiplier on row counts (0.05: a quick run)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--output", type=pathlib.Path, default=OUTPUT)
    ap.add_argument("--extension", type=pathlib.Path, default=EXTENSION)
    ap.add_argument("--extension-155", type=pathlib.Path, default=EXTENSION_155,
                    help="the extension built for DuckDB 1.5.5 (make DUCKDB_VERSION=1.5.5 release)")
    ap.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.step, args.tmp, args.extension.resolve())
        return

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        sys.exit(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    require_vss_and_extension(args.extension, "bench")
    if not args.extension_155.exists():
        sys.exit(f"missing {args.extension_155}: run `make DUCKDB_VERSION=1.5.5 release` or pass --extension-155")
    extensions = (args.extension.resolve(), args.extension_155.resolve())
    start = time.perf_counter()
    sections = []
    for name in names:
        print(f"{name} ...", flush=True)
        shape, truth, results = run_dataset(name, args.scale, args.queries, extensions)
        sections.append((name, shape, len(truth), results, sweep_points(results, truth)))
    text = report(sections, args, time.perf_counter() - start) + bulk_loading_section(args.scale)
    write_report(args.output, text.splitlines())


if __name__ == "__main__":
    main()
