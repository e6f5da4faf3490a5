"""The runnable scripts in sql/: each runs verbatim (after INSTALL hnsw FROM a repository, as
README says) on a small learning database, the searches use the index, and the recall query's
answer matches NumPy's exact search over the same Parquet file."""
import os
import pathlib
import shutil

import numpy as np
import pytest

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROWS = 4000


def statements(name):
    """The script's statements, comments dropped."""
    text = (ROOT / "sql" / name).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip()]


@pytest.fixture
def workdir(tmp_path, extension_path):
    """A working directory, and a connect function whose connections can LOAD hnsw by name."""
    repo = tmp_path / "repo" / f"v{duckdb.__version__}" / "linux_amd64"
    repo.mkdir(parents=True)
    shutil.copy(extension_path, repo / "hnsw.duckdb_extension")
    opened = []

    def connect(path=":memory:"):
        con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true",
                                                "extension_directory": str(tmp_path / "extensions")})
        con.execute(f"INSTALL hnsw FROM '{tmp_path / 'repo'}'")
        opened.append(con)
        return con

    cwd = os.getcwd()
    os.chdir(tmp_path)
    yield connect
    os.chdir(cwd)
    for con in opened:
        con.close()


def test_learning_database_scripts_run_and_use_the_index(workdir):
    con = workdir()
    con.execute(f"SET VARIABLE executions_rows = {ROWS}")
    for sql in statements("00_executions_parquet.sql"):
        con.execute(sql)
    con.close()
    con = workdir("learning.duckdb")
    for sql in statements("01_learning_database.sql"):
        result = con.execute(sql)
    assert result.fetchall()[0][:4] == ("executions_hnsw", ROWS, 384, "cosine")
    con.close()

    # A new session opens the stored index; every search of 02_search.sql goes through it.
    con = workdir("learning.duckdb")
    searches = statements("02_search.sql")
    con.execute(searches[0])  # LOAD hnsw
    con.execute(searches[1])  # the query vector
    for sql in searches[2:6]:
        plan = "".join(row[1] for row in con.execute("EXPLAIN " + sql).fetchall())
        assert "HNSW_INDEX_SCAN" in plan, sql
        assert con.execute(sql).fetchall()
    queries, recall = con.execute(searches[6]).fetchone()

    # The oracle: NumPy's exact cosine top 10 over the Parquet file for the same 20 queries.
    table = duckdb.sql("SELECT task_id, embedding FROM 'executions.parquet' ORDER BY task_id").to_arrow_table()
    vectors = table.column("embedding").combine_chunks().values.to_numpy().reshape(ROWS, 384).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [i for i in range(ROWS) if i % (ROWS // 20) == 7]
    assert queries == len(ids) == 20
    approx = dict(con.execute(
        "SELECT qid, list(n.task_id) FROM (SELECT task_id AS qid, embedding AS qv FROM executions WHERE task_id IN "
        f"({','.join(map(str, ids))})) q, LATERAL (SELECT task_id FROM executions "
        "ORDER BY array_cosine_distance(embedding, qv) LIMIT 10) n GROUP BY qid").fetchall())
    hits = 0
    for qid in ids:
        distances = 1 - vectors @ vectors[qid]
        truth = set(np.argsort(distances, kind="stable")[:10].tolist())
        hits += len(truth & set(approx[qid]))
    assert recall == pytest.approx(hits / (10 * len(ids)), abs=0.051)  # ties at the 10th place aside
    assert recall >= 0.9
