"""Smoke suite for every supported DuckDB version (`make test-versions` runs it in a venv with that
version's wheel against build/release/vX/hnsw.duckdb_extension; the full suite runs it on the
default version too). Each test checks one thing a user does first, against NumPy or a reopened
file. Needs only duckdb and pytest (no NumPy in the version venvs): the oracle is plain Python."""
import math
import os
import pathlib
import random
import shutil
import subprocess
import sys

import duckdb
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTENSION = pathlib.Path(os.environ.get("HNSW_EXTENSION") or ROOT / "build" / "release" / "hnsw.duckdb_extension")
DIM = 24
ROWS = 600
K = 5


def clustered_rows(seed=5):
    """ROWS vectors in 12 tight clusters (hard for a graph, easy to check) with a category column."""
    rng = random.Random(seed)
    centres = [[rng.gauss(0, 1) for _ in range(DIM)] for _ in range(12)]
    rows = []
    for i in range(ROWS):
        centre = centres[i % len(centres)]
        rows.append((i, i % 7, [c + rng.gauss(0, 0.05) for c in centre]))
    return rows


def l2sq(a, b):
    return sum((x - y) * (x - y) for x, y in zip(a, b))


def exact_ids(rows, query, k, keep=lambda row: True):
    """The k nearest ids by squared L2 in float64, ties broken by id."""
    scored = sorted((l2sq(v, query), i) for i, cat, v in rows if keep((i, cat, v)))
    return [i for _, i in scored[:k]]


def open_db(path=":memory:"):
    con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXTENSION}'")
    return con


def load_table(con, rows):
    con.execute(f"CREATE TABLE items (id INTEGER, cat INTEGER, v FLOAT[{DIM}])")
    con.executemany("INSERT INTO items VALUES (?, ?, ?)", rows)
    con.execute("CREATE INDEX items_v ON items USING HNSW (v) WITH (metric = 'l2sq', ef_search = 64)")


def top_k(con, query, k=K, where=""):
    sql = (f"SELECT id FROM items {where} ORDER BY array_distance(v, ?::FLOAT[{DIM}]) LIMIT {k}")
    return [r[0] for r in con.execute(sql, [query]).fetchall()]


def uses_index(con, query, where=""):
    plan = con.execute(f"EXPLAIN SELECT id FROM items {where} ORDER BY array_distance(v, ?::FLOAT[{DIM}]) "
                       f"LIMIT {K}", [query]).fetchall()
    return "HNSW_INDEX_SCAN" in "".join(row[1] for row in plan)


def test_loads_in_a_plain_python_process():
    # A fresh interpreter with default dlopen flags, as a user's script would be.
    code = (f"import duckdb\ncon = duckdb.connect(config={{'allow_unsigned_extensions': 'true'}})\n"
            f"con.execute(\"LOAD '{EXTENSION}'\")\n"
            "print(con.execute(\"SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'hnsw'\").fetchone()[0])\n"
            "print(duckdb.__version__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded, version = out.stdout.split()
    assert loaded == "True"
    assert version == duckdb.__version__


def test_install_from_a_repository_directory(tmp_path):
    # The layout `make repository` writes: <dir>/v<version>/linux_amd64/hnsw.duckdb_extension.
    repo = tmp_path / "repo"
    target = repo / f"v{duckdb.__version__}" / "linux_amd64"
    target.mkdir(parents=True)
    shutil.copy(EXTENSION, target / "hnsw.duckdb_extension")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"SET extension_directory = '{tmp_path / 'installed'}'")
    con.execute(f"INSTALL hnsw FROM '{repo}'")
    con.execute("LOAD hnsw")
    row = con.execute("SELECT loaded, installed FROM duckdb_extensions() WHERE extension_name = 'hnsw'").fetchone()
    assert row == (True, True)
    assert con.execute("SELECT array_l2sq_distance([0, 3]::FLOAT[2], [4, 0]::FLOAT[2])").fetchone()[0] == 25.0


def test_top_k_rewrite_matches_exact_search():
    rows = clustered_rows()
    con = open_db()
    load_table(con, rows)
    rng = random.Random(9)
    hits = total = 0
    for i in range(0, ROWS, 37):
        query = [x + rng.gauss(0, 0.02) for x in rows[i][2]]  # not a stored point
        assert uses_index(con, query)
        got, want = top_k(con, query), exact_ids(rows, query, K)
        hits += len(set(got) & set(want))
        total += K
    assert hits / total >= 0.95, f"recall@{K} {hits / total:.3f}"


def test_filtered_query_matches_exact_search():
    rows = clustered_rows()
    con = open_db()
    load_table(con, rows)
    for i in range(3, ROWS, 101):
        query = rows[i][2]
        where = "WHERE cat = 2 AND id > 50"
        assert uses_index(con, query, where)
        want = exact_ids(rows, query, K, keep=lambda row: row[1] == 2 and row[0] > 50)
        assert top_k(con, query, where=where) == want


def test_insert_and_delete_are_seen_by_the_index():
    rows = clustered_rows()
    con = open_db()
    load_table(con, rows)
    new = [x + 0.2 for x in rows[7][2]]  # beside a cluster, nearer to nothing stored than to itself
    con.execute("INSERT INTO items VALUES (?, ?, ?)", [ROWS, 0, new])
    assert top_k(con, new, k=1) == [ROWS]
    con.execute("DELETE FROM items WHERE id = ?", [ROWS])
    assert top_k(con, new, k=1) == exact_ids(rows, new, 1)
    victim = rows[10]
    con.execute("DELETE FROM items WHERE id = ?", [victim[0]])
    assert victim[0] not in top_k(con, victim[2], k=K)


def test_checkpoint_and_reopen_keep_the_index(tmp_path):
    rows = clustered_rows()
    path = tmp_path / "smoke.duckdb"
    con = open_db(path)
    load_table(con, rows)
    con.execute("DELETE FROM items WHERE id < 20")
    con.execute("CHECKPOINT")
    con.close()
    con = open_db(path)
    kept = [r for r in rows if r[0] >= 20]
    query = rows[300][2]
    assert uses_index(con, query)
    assert top_k(con, query) == exact_ids(kept, query, K)
    info = con.execute("SELECT index_name, count, dimensions, metric FROM pragma_hnsw_index_info()").fetchall()
    assert len(info) == 1
    name, count, dims, metric = info[0]
    assert (name, dims, metric) == ("items_v", DIM, "l2sq")
    assert count == len(kept)  # live rows


def test_an_index_keeps_its_options_across_a_reopen(tmp_path):
    # DuckDB 1.5's catalog forgets an index's WITH options at a reopen: a cosine index came back
    # as l2sq (used for L2 queries, not for cosine ones) until the index kept its own copy.
    rows = clustered_rows()
    path = tmp_path / "options.duckdb"
    con = open_db(path)
    con.execute(f"CREATE TABLE items (id INTEGER, cat INTEGER, v FLOAT[{DIM}])")
    con.executemany("INSERT INTO items VALUES (?, ?, ?)", rows)
    con.execute("CREATE INDEX items_v ON items USING HNSW (v) WITH (metric = 'cosine', M = 12, ef_construction = 96, "
                "ef_search = 48, quantization = 'int8', overfetch = 3)")
    info_sql = ("SELECT metric, m, m0, ef_construction, ef_search, quantization, overfetch, bytes_per_vector "
                "FROM pragma_hnsw_index_info()")
    before = con.execute(info_sql).fetchall()
    assert before == [("cosine", 12, 24, 96, 48, "int8", 3, DIM)]
    con.close()
    for reopen in range(2):  # once from the WAL's copy, once from the checkpointed file's
        con = open_db(path)
        assert con.execute(info_sql).fetchall() == before
        query = rows[300][2]
        cosine = f"SELECT id FROM items ORDER BY array_cosine_distance(v, ?::FLOAT[{DIM}]) LIMIT {K}"
        plan = "".join(r[1] for r in con.execute("EXPLAIN " + cosine, [query]).fetchall())
        assert "HNSW_INDEX_SCAN" in plan
        assert not uses_index(con, query)  # an L2 query does not use a cosine index
        con.execute("CHECKPOINT")
        con.close()


def test_pragma_reports_the_index():
    rows = clustered_rows()
    con = open_db()
    load_table(con, rows)
    info = con.execute("SELECT table_name, count, m, ef_search FROM pragma_hnsw_index_info()").fetchall()
    assert info == [("items", ROWS, 16, 64)]
    assert math.isclose(con.execute("SELECT count(*) FROM items").fetchone()[0], ROWS)


def test_a_write_before_load_does_not_block_writes_after_load(tmp_path):
    # The write fails (the index type is unknown until LOAD); before DuckDB 2.0.1 it also left the
    # index binding forever, so the write after LOAD hung. A subprocess with a timeout.
    path = tmp_path / "before_load.duckdb"
    con = open_db(path)
    load_table(con, clustered_rows())
    con.close()
    code = (f"import duckdb\ncon = duckdb.connect({str(path)!r}, config={{'allow_unsigned_extensions': 'true'}})\n"
            "try:\n    con.execute('INSERT INTO items SELECT id + 1000, cat, v FROM items WHERE id = 1')\n"
            "except duckdb.Error as e:\n    print('REFUSED', 'unknown index type' in str(e))\n"
            f"con.execute(\"LOAD '{EXTENSION}'\")\n"
            "con.execute('INSERT INTO items SELECT id + 2000, cat, v FROM items WHERE id = 2')\n"
            "con.execute('DELETE FROM items WHERE id = 3')\n"
            "print('ROWS', con.execute('SELECT count(*) FROM items').fetchone()[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["REFUSED", "True", "ROWS", str(ROWS)]
    con = open_db(path)
    rows = [r for r in clustered_rows() if r[0] != 3] + [(2002, 2 % 7, clustered_rows()[2][2])]
    for query in (clustered_rows()[15][2], [x + 0.01 for x in clustered_rows()[3][2]]):
        assert top_k(con, query) == exact_ids(rows, query, K)


def test_measuring_functions_and_the_stored_ef_search(tmp_path):
    rows = clustered_rows()
    path = tmp_path / "measure.duckdb"
    con = open_db(path)
    load_table(con, rows)
    con.execute("CREATE TABLE queries AS SELECT v FROM items WHERE id % 60 = 0")
    bench = con.execute("SELECT ef, recall, queries FROM hnsw_benchmark('items_v', (FROM queries), k := 5, "
                        "ef := [5, 50])").fetchall()
    assert [(ef, n) for ef, _, n in bench] == [(5, 10), (50, 10)] and bench[1][1] == 1.0
    chosen = con.execute("SELECT ef FROM hnsw_tune('items_v', (FROM hnsw_sample_queries('items_v', 50)), k := 5) "
                         "WHERE chosen").fetchall()
    assert len(chosen) == 1
    live, layers, warning = con.execute("SELECT live, len(layers), warning FROM hnsw_index_health('items_v')"
                                        ).fetchone()
    assert live == ROWS and layers >= 1 and warning is None
    con.execute("PRAGMA hnsw_set_ef_search('items_v', 33)")
    con.close()
    con = open_db(path)
    assert con.execute("SELECT ef_search FROM pragma_hnsw_index_info()").fetchall() == [(33,)]


def test_a_bad_vector_fails_its_statement_not_the_commit():
    rows = clustered_rows()
    con = open_db()
    load_table(con, rows)
    # (A SQL literal: DuckDB 1.5's Python client turns a NaN list parameter into NULL.)
    nan = "['nan'::FLOAT, " + ", ".join(["1"] * (DIM - 1)) + f"]::FLOAT[{DIM}]"
    with pytest.raises(duckdb.InvalidInputException, match="component 0 is NaN"):
        con.execute(f"INSERT INTO items VALUES (5000, 1, {nan})")
    with pytest.raises(duckdb.InvalidInputException, match="component 0 is NaN"):
        con.execute(f"UPDATE items SET v = {nan} WHERE id = 3")
    assert con.execute("SELECT count(*) FROM items").fetchone()[0] == ROWS
    assert top_k(con, rows[3][2]) == exact_ids(rows, rows[3][2], K)
