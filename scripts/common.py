"""What the demos, the bulk loader and the benchmarks share: the repository's paths, DuckDB with an
HNSW extension loaded, seeded vectors and Arrow inserts, exact neighbours and recall, worker
subprocesses, and the markdown reports in bench-results/."""
import json
import os
import pathlib
import platform
import shlex
import statistics
import subprocess
import sys
import time

import duckdb
import numpy as np
import pyarrow as pa

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "build" / "release" / "hnsw.duckdb_extension"
VSS_PYTHON = ROOT / ".venv-vss" / "bin" / "python"
REPORTS = ROOT / "bench-results"
K = 10
WARMUP_QUERIES = 5


def sql_string(text):
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def sql_identifier(name):
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def connect(path=":memory:", engine="hnsw", extension=EXTENSION, threads=None, persistent=False):
    """Opens a DuckDB database with an engine's extension: hnsw from `extension`, vss from its package, none for exact."""
    if engine == "hnsw":
        con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true"})
        # LOAD before the first write: DuckDB binds a stored HNSW index when its table is first written.
        con.execute(f"LOAD {sql_string(extension)}")
    else:
        con = duckdb.connect(str(path))
    if engine == "vss":
        import duckdb_extension_vss  # installed in .venv-vss only

        packaged = pathlib.Path(duckdb_extension_vss.__file__).parent / "extensions" / f"v{duckdb.__version__}"
        con.execute(f"LOAD {sql_string(packaged / 'vss.duckdb_extension')}")
    if persistent and engine != "exact":
        # vss keeps an index in a database file only with this setting; hnsw accepts it and always persists.
        con.execute("SET hnsw_enable_experimental_persistence = true")
    if threads is not None:
        con.execute(f"SET threads = {threads}")
    return con


def extension_version(con, name):
    """The extension_version that duckdb_extensions() reports for a loaded extension."""
    return con.execute("SELECT extension_version FROM duckdb_extensions() WHERE extension_name = ?",
                       [name]).fetchall()[0][0]


def clustered(n, dim, seed, clusters=64):
    """n seeded float32 vectors around `clusters` random centres (neighbourhoods like real embeddings have)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32) * 4
    labels = rng.integers(0, clusters, size=n)
    return (centres[labels] + rng.normal(size=(n, dim)).astype(np.float32)).astype(np.float32)


def gaussian(n, dim, seed):
    """n seeded float32 vectors from the standard normal distribution."""
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def vector_array(vectors):
    """A 2-D array of vectors as an Arrow fixed-size list array, which DuckDB reads as FLOAT[n] without copies."""
    flat = np.ascontiguousarray(vectors, dtype=np.float32).ravel()
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), vectors.shape[1])


def insert_vectors(con, table, ids, vectors, create=False, id_column="id", column="v"):
    """Inserts (id, FLOAT[n] vector) rows through an Arrow table; create=True makes the table (id INTEGER) from them."""
    dim = vectors.shape[1]
    con.register("vectors_arrow", pa.table({id_column: ids, column: vector_array(vectors)}))
    try:
        id_name, name = sql_identifier(id_column), sql_identifier(column)
        if create:
            con.execute(f"CREATE TABLE {sql_identifier(table)} AS SELECT {id_name}::INTEGER AS {id_name}, "
                        f"{name}::FLOAT[{dim}] AS {name} FROM vectors_arrow")
        else:
            con.execute(f"INSERT INTO {sql_identifier(table)} BY NAME SELECT {id_name}, "
                        f"{name}::FLOAT[{dim}] AS {name} FROM vectors_arrow")
    finally:
        con.unregister("vectors_arrow")


def one_row_insert_ms(con, table, ids, vectors):
    """Milliseconds of each autocommitted one-row INSERT INTO table VALUES (?, ?), the vector a list parameter."""
    sql = f"INSERT INTO {sql_identifier(table)} VALUES (?, ?)"
    latencies = []
    for row_id, vector in zip(ids, vectors.tolist()):
        start = time.perf_counter()
        con.execute(sql, [int(row_id), vector])
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def knn_sql(dim, vector=None, k=K):
    """The benchmarks' top-k query on items(id, v): the query vector as a literal, or parameter ? without one."""
    query = "?" if vector is None else str(vector.tolist())
    return f"SELECT id FROM items ORDER BY array_distance(v, {query}::FLOAT[{dim}]) LIMIT {k}"


def plan_uses_index(con, sql, params=()):
    """Whether the physical plan of a query has an HNSW index scan."""
    plan = con.execute("EXPLAIN " + sql, list(params)).fetchall()[0][1]
    return "HNSW_INDEX_SCAN" in plan.upper().replace(" ", "_")


def search_latencies(search, queries):
    """Runs WARMUP_QUERIES queries untimed, then every query once: per-query latencies (ms) and answer ids."""
    for q in queries[:WARMUP_QUERIES]:
        search(q)
    latencies, answers = [], []
    for q in queries:
        start = time.perf_counter()
        ids = search(q)
        latencies.append((time.perf_counter() - start) * 1000)
        answers.append([int(i) for i in ids])
    return {"latencies_ms": latencies, "answers": answers}


def timed(action):
    """Seconds taken by action()."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def exact_top_k(data, queries, k=K):
    """Ids of each query's k nearest rows by float64 squared L2, nearest first: one row per query."""
    data64 = data.astype(np.float64)
    norms = (data64**2).sum(axis=1)
    top = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 100):  # 100 queries at a time bounds the distance matrix's memory
        distances = norms[None, :] - 2 * queries[start : start + 100].astype(np.float64) @ data64.T
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(distances, nearest, axis=1).argsort(axis=1)
        top[start : start + 100] = np.take_along_axis(nearest, order, axis=1)
    return top


def mean_recall(answers, truth, k=K):
    """Mean recall@k of answer id lists against the true top-k ids, query by query."""
    return statistics.mean(len(set(map(int, a)) & set(map(int, t))) / k for a, t in zip(answers, truth))


def file_mib(path):
    """Size of a database file plus its WAL (if any) in MiB."""
    wal = pathlib.Path(f"{path}.wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 2**20


def cpu_model():
    """CPU model name from /proc/cpuinfo, or the platform's processor string."""
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine():
    """The machine a report was measured on: platform, CPU model and core count."""
    return f"{platform.platform()}, {cpu_model()}, {os.cpu_count()} cores"


def command_line():
    """The command that started this process, as typed in the repository root."""
    return shlex.join([os.path.relpath(sys.executable, ROOT), "-m", sys.modules["__main__"].__spec__.name,
                       *sys.argv[1:]])


def run_module(python, module, args, timeout=None):
    """Runs `python -m module args` in the repository root, where the scripts package imports from; output captured."""
    return subprocess.run([str(python), "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def worker_json(python, module, args, step, timeout=None):
    """Runs one worker step in a subprocess: the JSON line it printed last, or an "error" entry saying how it ended."""
    try:
        out = run_module(python, module, args, timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{step} step timed out after {timeout} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        how = f"killed by signal {-out.returncode}" if out.returncode < 0 else f"exited with code {out.returncode}"
        return {"error": f"{step} step {how}: {tail}"}
    return json.loads(lines[-1])


def worker_result(python, module, args, step, timeout=None):
    """worker_json, exiting with the step's error if it failed."""
    result = worker_json(python, module, args, step, timeout)
    if "error" in result:
        sys.exit(result["error"])
    return result


def require_vss_and_extension(extension, make_target):
    """Exits saying what to run when .venv-vss (DuckDB 1.5.5 with vss) or the hnsw extension is missing."""
    if not VSS_PYTHON.exists():
        sys.exit(f"missing .venv-vss: run `make {make_target}` (it installs duckdb==1.5.5 + duckdb-extension-vss)")
    if not pathlib.Path(extension).exists():
        sys.exit(f"missing {extension}: run `make release` or pass --extension")


def write_report(path, lines, echo=True):
    """Writes a report's markdown lines to path (its folder created), printing them unless echo is off."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    if echo:
        print("\n".join(lines))
    print(f"written to {path}")
