"""The runnable scripts in sql/: each runs verbatim (after INSTALL hnsw FROM a repository, as README
says) on a small learning database, and every file in sql/ is run by a test here. The searches use
the index and the recall query's answer matches NumPy's exact search; the benchmark's recall
matches the index's own answers scored against NumPy's exact search; the tuning script's Pareto
table is the Pareto front of its results and its stored ef_search is the smallest reaching the
target. scripts.run_sql splits scripts as DuckDB's parser does, prints results, and names the
statement that failed."""
import functools
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.run_sql import split_statements  # noqa: E402

SQL = ROOT / "sql"
ROWS = 4000
K = 10
DECLARED = {}  # sql/ file name -> the tests that declare they run it
EXECUTED = set()  # sql/ file names executed in this session


def runs(*names):
    """Declares the sql/ files a test runs (test_every_sql_file_is_run checks all are declared); the
    test fails if it returns without having executed each of them."""
    def decorate(test):
        for name in names:
            DECLARED.setdefault(name, []).append(test.__name__)

        @functools.wraps(test)
        def checked(*args, **kwargs):
            test(*args, **kwargs)
            missing = set(names) - EXECUTED
            assert not missing, f"{test.__name__} declares it runs {sorted(missing)} but did not execute them"
        return checked
    return decorate


def statements(name):
    """The script's statements in order, as scripts.run_sql splits them (comments inside kept)."""
    return [s.text for s in split_statements((SQL / name).read_text())]


def execute_script(con, name, skip=0):
    """Runs the script's statements from number skip+1 on, in order: each one's (columns, rows), rows
    empty for statements without a result set."""
    EXECUTED.add(name)
    results = []
    for sql in statements(name)[skip:]:
        result = con.execute(sql)
        columns = [d[0] for d in result.description or []]
        results.append((columns, result.fetchall() if columns else []))
    return results


def result_with(results, *columns):
    """The rows of the one statement whose result has exactly these columns, as dicts."""
    matches = [rows for cols, rows in results if tuple(cols) == columns]
    assert len(matches) == 1, f"expected one result with columns {columns}, got {len(matches)}"
    return [dict(zip(columns, row)) for row in matches[0]]


def connect(path, home):
    """A connection whose LOAD hnsw finds the extension installed from the test repository."""
    con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true",
                                            "extension_directory": str(home / "extensions")})
    con.execute(f"INSTALL hnsw FROM '{home / 'repo'}'")
    return con


@pytest.fixture(scope="module")
def home(tmp_path_factory, extension_path):
    """A directory with a local extension repository holding the built extension (as `make repository`
    lays one out) and an extension directory to install it into."""
    home = tmp_path_factory.mktemp("home")
    repo = home / "repo" / f"v{duckdb.__version__}" / "linux_amd64"
    repo.mkdir(parents=True)
    shutil.copy(extension_path, repo / "hnsw.duckdb_extension")
    return home


@pytest.fixture(scope="module")
def learning(home):
    """The learning database (ROWS rows) made by running 00 and 01 verbatim in their own directory: the
    directory (with executions.parquet and learning.duckdb) and 01's last result."""
    directory = home / "learning"
    directory.mkdir()
    cwd = os.getcwd()
    os.chdir(directory)  # the scripts write and read executions.parquet in the working directory
    try:
        con = connect(":memory:", home)
        con.execute(f"SET VARIABLE executions_rows = {ROWS}")
        execute_script(con, "00_executions_parquet.sql")
        con.close()
        con = connect("learning.duckdb", home)
        info = execute_script(con, "01_learning_database.sql")[-1]
        con.close()
    finally:
        os.chdir(cwd)
    return directory, info


@pytest.fixture
def learning_copy(learning, home, tmp_path):
    """A connection to a fresh copy of the learning database, so each test's changes stay its own."""
    shutil.copy(learning[0] / "learning.duckdb", tmp_path / "learning.duckdb")
    con = connect(tmp_path / "learning.duckdb", home)
    yield con
    con.close()


def stored_vectors(con):
    """The executions' task ids and float64 embeddings, in task_id order."""
    table = con.sql("SELECT task_id, embedding FROM executions ORDER BY task_id").to_arrow_table()
    ids = table.column("task_id").to_numpy()
    vectors = table.column("embedding").combine_chunks().values.to_numpy().reshape(len(ids), 384)
    return ids, vectors.astype(np.float64)


def exact_cosine_top_k(vectors, queries, k=K):
    """Row positions of each query's k nearest rows by float64 cosine distance, nearest first."""
    data = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(1 - q @ data.T, axis=1, kind="stable")[:, :k]


def pareto_front(rows):
    """The rows no other row matches or beats on recall (up), p50, memory and build time (down) while
    beating it on at least one, by index name and ef."""
    def dominates(a, b):
        at_least = (a["recall"] >= b["recall"] and a["p50_ms"] <= b["p50_ms"]
                    and a["memory_bytes"] <= b["memory_bytes"] and a["build_seconds"] <= b["build_seconds"])
        better = (a["recall"] > b["recall"] or a["p50_ms"] < b["p50_ms"]
                  or a["memory_bytes"] < b["memory_bytes"] or a["build_seconds"] < b["build_seconds"])
        return at_least and better

    return {(r["index_name"], r["ef"]) for r in rows if not any(dominates(o, r) for o in rows)}


def test_every_sql_file_is_run():
    """A new file in sql/ fails the suite until a test here declares (and executes) it."""
    on_disk = {path.name for path in SQL.glob("*.sql")}
    assert set(DECLARED) == on_disk, (f"sql/ holds {sorted(on_disk)}, the tests run {sorted(DECLARED)}: "
                                      f"untested {sorted(on_disk - set(DECLARED))}")


@runs("00_executions_parquet.sql", "01_learning_database.sql", "02_search.sql")
def test_learning_database_scripts_run_and_use_the_index(learning, learning_copy):
    directory, info = learning
    assert info[1][0][:4] == ("executions_hnsw", ROWS, 384, "cosine")

    # A new session opens the stored index; every search of 02_search.sql goes through it.
    con = learning_copy
    EXECUTED.add("02_search.sql")
    searches = statements("02_search.sql")
    con.execute(searches[0])  # LOAD hnsw
    con.execute(searches[1])  # the query vector
    for sql in searches[2:6]:
        plan = "".join(row[1] for row in con.execute("EXPLAIN " + sql).fetchall())
        assert "HNSW_INDEX_SCAN" in plan, sql
        assert con.execute(sql).fetchall()
    queries, recall = con.execute(searches[6]).fetchone()

    # The oracle: NumPy's exact cosine top 10 over the Parquet file for the same 20 queries.
    table = duckdb.sql(f"SELECT task_id, embedding FROM '{directory / 'executions.parquet'}' ORDER BY task_id"
                       ).to_arrow_table()
    vectors = table.column("embedding").combine_chunks().values.to_numpy().reshape(ROWS, 384).astype(np.float64)
    ids = [i for i in range(ROWS) if i % (ROWS // 20) == 7]
    assert queries == len(ids) == 20
    approx = dict(con.execute(
        "SELECT qid, list(n.task_id) FROM (SELECT task_id AS qid, embedding AS qv FROM executions WHERE task_id IN "
        f"({','.join(map(str, ids))})) q, LATERAL (SELECT task_id FROM executions "
        "ORDER BY array_cosine_distance(embedding, qv) LIMIT 10) n GROUP BY qid").fetchall())
    truth = exact_cosine_top_k(vectors, vectors[ids])
    hits = sum(len(set(t.tolist()) & set(approx[qid])) for qid, t in zip(ids, truth))
    assert recall == pytest.approx(hits / (10 * len(ids)), abs=0.051)  # ties at the 10th place aside
    assert recall >= 0.9


@runs("03_benchmark.sql")
def test_benchmark_script_recall_matches_exact_search(learning_copy):
    con = learning_copy
    results = execute_script(con, "03_benchmark.sql")
    sweep = [dict(zip(cols, row)) for cols, rows in results if cols and cols[0] == "ef" and "truth_ms" in cols
             for row in rows]
    assert [r["ef"] for r in sweep] == [10, 16, 32, 64, 128, 256], sweep
    assert all(r["queries"] == 200 and r["k"] == K for r in sweep), sweep
    assert len({r["truth_ms"] for r in sweep}) == 1 and sweep[0]["truth_ms"] > 0, sweep
    for r in sweep:
        assert 0 <= r["recall"] <= 1 and 0 < r["p50_ms"] <= r["p99_ms"] and r["qps"] > 0, r
        assert K <= r["distances_per_query"] <= ROWS, r
    for before, after in zip(sweep, sweep[1:]):
        assert after["recall"] >= before["recall"] - 0.02, sweep  # a wider search finds as much, noise aside
        assert after["distances_per_query"] >= before["distances_per_query"], sweep
    assert sweep[-1]["recall"] >= 0.9, sweep

    # The queries are near stored rows but none is one: held-out-like.
    ids, vectors = stored_vectors(con)
    table = con.sql("SELECT task_id, embedding FROM benchmark_queries ORDER BY task_id").to_arrow_table()
    query_ids = table.column("task_id").to_pylist()
    queries = table.column("embedding").combine_chunks().values.to_numpy().reshape(-1, 384).astype(np.float64)
    assert len(query_ids) == 200
    truth = exact_cosine_top_k(vectors, queries)
    unit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    nearest = 1 - (unit * vectors[truth[:, 0]] / np.linalg.norm(vectors[truth[:, 0]], axis=1, keepdims=True)).sum(1)
    assert (nearest > 1e-4).all() and (nearest < 0.1).all(), nearest

    # The oracle: at each ef, the index's own answers to the same queries (an index scan in SQL with
    # hnsw_ef_search set) scored against NumPy's exact top 10.
    answers_sql = ("SELECT q.task_id, list(n.task_id) FROM benchmark_queries q, LATERAL (SELECT task_id "
                   "FROM executions ORDER BY array_cosine_distance(embedding, q.embedding) LIMIT 10) n "
                   "GROUP BY q.task_id")
    assert "HNSW_INDEX_SCAN" in "".join(row[1] for row in con.execute("EXPLAIN " + answers_sql).fetchall())
    for r in sweep:
        con.execute(f"SET hnsw_ef_search = {r['ef']}")
        answers = dict(con.execute(answers_sql).fetchall())
        hits = sum(len(set(ids[t].tolist()) & set(answers[qid])) for qid, t in zip(query_ids, truth))
        # Equal up to a tie at the 10th place or two (one hit is 0.0005 of recall here).
        assert r["recall"] == pytest.approx(hits / (K * len(query_ids)), abs=0.0011), (r, hits)
    con.execute("RESET hnsw_ef_search")

    summary = result_with(results, "ef", "recall_at_10", "share_of_rows_compared", "p50_ms", "p99_ms",
                          "speedup_over_exact", "smallest_ef_for_095")
    reaching = [r["ef"] for r in sweep if r["recall"] >= 0.95]
    assert [s["ef"] for s in summary] == [r["ef"] for r in sweep]
    for s, r in zip(summary, sweep):
        assert s["recall_at_10"] == pytest.approx(r["recall"], abs=0.0005)
        assert s["share_of_rows_compared"] == pytest.approx(r["distances_per_query"] / ROWS, abs=0.00005)
        assert s["smallest_ef_for_095"] == (bool(reaching) and s["ef"] == min(reaching)), (s, sweep)
    stored = result_with(results, "stored_ef_search", "smallest_ef_for_095", "best_recall")
    assert stored == [{"stored_ef_search": 64, "smallest_ef_for_095": min(reaching, default=None),
                       "best_recall": round(max(r["recall"] for r in sweep), 3)}]


@runs("04_tuning.sql")
def test_tuning_script_pareto_front_and_stored_ef_search(learning_copy):
    con = learning_copy
    start = time.perf_counter()
    results = execute_script(con, "04_tuning.sql")
    seconds = time.perf_counter() - start

    columns = [d[0] for d in con.execute("FROM tuning_results").description]
    rows = [dict(zip(columns, row)) for row in con.execute("FROM tuning_results").fetchall()]
    configs = {(8, 32), (8, 64), (8, 128), (16, 32), (16, 64), (16, 128)}
    assert {(r["m"], r["ef_construction"]) for r in rows} == configs
    assert sorted((r["index_name"], r["ef"]) for r in rows) == sorted(
        (f"tuning_m{m}_efc{efc}", ef) for m, efc in configs for ef in (16, 32, 64, 128))
    for r in rows:
        assert 0 <= r["recall"] <= 1 and 0 < r["p50_ms"] <= r["p99_ms"] and r["memory_bytes"] > 0, r
    # Build times are real durations: positive, together less than the whole script took.
    builds = {r["index_name"]: r["build_seconds"] for r in rows}
    assert all(b > 0 for b in builds.values()) and sum(builds.values()) < seconds, builds
    # Twice the links per node takes more memory, whatever ef_construction.
    memory = {(r["m"], r["ef_construction"]): r["memory_bytes"] for r in rows}
    assert all(memory[16, efc] > memory[8, efc] for efc in (32, 64, 128)), memory

    # The Pareto table: non-empty, and exactly the rows no other row dominates (computed here).
    front = pareto_front(rows)
    assert front
    pareto_columns = [d[0] for d in con.execute("FROM tuning_pareto").description]
    view = {(row[pareto_columns.index("index_name")], row[pareto_columns.index("ef")])
            for row in con.execute("FROM tuning_pareto").fetchall()}
    assert view == front, (view, front)
    shown = result_with(results, "m", "ef_construction", "ef", "recall", "p50_ms", "memory_mib", "build_seconds")
    assert {(f"tuning_m{s['m']}_efc{s['ef_construction']}", s["ef"]) for s in shown} == front

    # The choice: the front's least memory, then fastest, row reaching 0.95 (else the best recall).
    by_key = {(r["index_name"], r["ef"]): r for r in rows}
    candidates = [by_key[key] for key in front]
    reaching = [r for r in candidates if r["recall"] >= 0.95]
    best = (min(reaching, key=lambda r: (r["memory_bytes"], r["p50_ms"])) if reaching
            else max(candidates, key=lambda r: (r["recall"], -r["p50_ms"])))
    choice = con.execute("SELECT getvariable('tuning_choice')").fetchone()[0]
    assert choice == best["index_name"], (choice, best)

    # hnsw_tune's curve marks the smallest ef reaching 0.95 (only that one), and it is stored.
    curves = [[dict(zip(cols, row)) for row in rows] for cols, rows in results if "chosen" in cols]
    assert len(curves) == 1, results
    curve = curves[0]
    assert {"ef", "recall", "distances_per_query", "p50_ms", "p99_ms", "qps", "chosen"} <= set(curve[0]), curve
    assert curve and all(0 <= c["recall"] <= 1 for c in curve), curve
    efs = [c["ef"] for c in curve]
    assert efs == sorted(efs), curve
    reaching_ef = [c["ef"] for c in curve if c["recall"] >= 0.95]
    assert [c["ef"] for c in curve if c["chosen"]] == reaching_ef[:1], curve
    tuned = reaching_ef[0] if reaching_ef else max(efs)
    stored = result_with(results, "index_name", "m", "ef_construction", "ef_search", "approx_memory_usage")
    assert [(s["index_name"], s["ef_search"]) for s in stored] == [(choice, tuned)], stored
    assert (stored[0]["m"], stored[0]["ef_construction"]) == (best["m"], best["ef_construction"])
    recommended = result_with(results, "m", "ef_construction", "ef_search")
    assert recommended == [{"m": best["m"], "ef_construction": best["ef_construction"], "ef_search": tuned}]

    # The sweep indexes are gone; executions_hnsw is as 01 made it.
    assert result_with(results, "index_name", "table_name") == [{"index_name": "executions_hnsw",
                                                                 "table_name": "executions"}]
    assert con.execute("SELECT m, ef_construction, ef_search, count FROM pragma_hnsw_index_info()").fetchall() == [
        (16, 128, 64, ROWS)]


def run_sql(args, cwd, home):
    """Runs `python -m scripts.run_sql args` in cwd with an empty HOME (so hnsw counts as not installed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(home))
    return subprocess.run([sys.executable, "-m", "scripts.run_sql", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_splitting_agrees_with_duckdbs_parser():
    """Every sql/ file, and a script with ';' in every kind of string and comment, splits into the
    statements DuckDB's own parser finds."""
    tricky = ("-- a comment; with a semicolon\nSELECT 'a;b''c' AS \"x;\"\"y\" /* c; /* nested; */ still; */;\n"
              "SELECT E'it\\'s;';  -- trailing; comment\nSELECT $$ dollar; $$, $tag$ x;$$ $tag$;\n"
              "/* only a comment; */ ;\nSELECT 1\n")
    scripts = {path.name: path.read_text() for path in SQL.glob("*.sql")}
    scripts["tricky"] = tricky
    for name, text in scripts.items():
        mine = [s.text for s in split_statements(text)]
        parsed = [s.query for s in duckdb.extract_statements(text)]
        parsed = [q for q in parsed if duckdb.extract_statements(q)]  # DuckDB keeps no comment-only pieces either
        assert len(mine) == len(parsed), (name, mine, parsed)
        for statement, query in zip(mine, parsed):
            assert statement in query, (name, statement, query)
    assert [s.line for s in split_statements(tricky)] == [2, 3, 4, 6]


def test_runner_runs_a_script_and_prints_its_results(learning, home, tmp_path, extension_path):
    shutil.copy(learning[0] / "learning.duckdb", tmp_path / "learning.duckdb")
    out = run_sql(["learning.duckdb", SQL / "02_search.sql", "--extension", extension_path], tmp_path, tmp_path)
    assert out.returncode == 0, out.stderr
    count = len(statements("02_search.sql"))
    assert f"02_search.sql: {count} statements in" in out.stdout, out.stdout
    # hnsw is not installed under this HOME: LOAD hnsw loaded the file instead, and said so.
    assert f"(hnsw not installed: loaded {extension_path})" in out.stdout, out.stdout
    blocks = out.stdout.split("\n[")
    assert len(blocks) == count, out.stdout

    # The first search's block: its header, an aligned table of the 5 rows DuckDB returns, the time.
    first = blocks[2].splitlines()
    assert first[0].startswith("3] line 10: SELECT task_id, description, array_cosine_distance"), first
    assert first[1].split() == ["task_id", "description", "distance"], first
    assert set(first[2]) == {"-", " "}, first
    con = duckdb.connect(str(tmp_path / "learning.duckdb"), config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension_path}'")
    con.execute(statements("02_search.sql")[1])
    expected = con.execute(statements("02_search.sql")[2]).fetchall()
    con.close()
    assert len(expected) == 5 and expected[0][0] == 42
    for line, (task_id, description, distance) in zip(first[3:8], expected):
        assert line.split()[0] == str(task_id) and description in line, (line, task_id)
        assert float(line.split()[-1]) == pytest.approx(distance, abs=1e-5)
    assert len({len(line) for line in first[1:8]}) == 1, first  # the last column (numbers) right-aligned
    assert re.fullmatch(r"\(5 rows, [0-9.]+ m?s\)", first[8]), first
    # Statements without rows print their time only.
    assert blocks[1].splitlines()[1].startswith("("), blocks[1]


def test_runner_stops_at_a_failing_statement_and_names_it(tmp_path, extension_path):
    script = tmp_path / "bad.sql"
    script.write_text("-- the third statement fails\nCREATE TABLE t AS SELECT 1 AS a;\nSELECT 'x;y' AS text;\n"
                      "SELECT *\nFROM missing_table;  -- not there\nCREATE TABLE after_failure (a INTEGER);\n")
    out = run_sql(["bad.duckdb", script, "--extension", extension_path], tmp_path, tmp_path)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "statement 3 (line 4) failed:\nSELECT *\nFROM missing_table\n" in out.stderr, out.stderr
    assert "missing_table does not exist" in out.stderr, out.stderr
    assert "x;y" in out.stdout and "[3] line 4" in out.stdout and "[4]" not in out.stdout, out.stdout
    # Statements before the failure were committed, none after it ran.
    con = duckdb.connect(str(tmp_path / "bad.duckdb"))
    assert {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()} == {"t"}
    con.close()
