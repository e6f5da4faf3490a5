"""Crash safety: a writer is SIGKILLed at 50 seeded points (inside inserts, deletes, updates,
CREATE/DROP INDEX and CHECKPOINT); after every restart the table holds exactly the committed rows
(checked against an in-memory DuckDB that replays the committed statements) and the index agrees
with the table and with exact search."""
import json
import pathlib
import random
import subprocess
import sys
import time

import duckdb

WORKER = pathlib.Path(__file__).with_name("crash_worker.py")
ROUNDS = 50
# Each round kills the worker just after it starts one of these (round-robin).
KINDS = ["INSERT", "DELETE", "UPDATE", "CHECKPOINT", "CREATE INDEX", "DROP INDEX"]
SAMPLES = 4
VECTOR_CHECK = (
    "SELECT count(*) FROM t WHERE v IS DISTINCT FROM "
    "list_transform(range(32), lambda j: ((hash(id::BIGINT * 1000003 + ver * 131 + j) % 2000) / 1000.0 - 1))::FLOAT[32]"
)


def read_journal(path):
    """Statements that committed, and the one that may have been cut short (or None)."""
    done, inflight = [], None
    if not path.exists():
        return done, inflight
    for line in path.read_text().splitlines():
        if line.startswith("intent "):
            inflight = json.loads(line[len("intent ") :])
        elif line == "done" and inflight is not None:
            done.append(inflight)
            inflight = None
    return done, inflight


def rows(con):
    return con.execute("SELECT id, ver FROM t ORDER BY id").fetchall()


def changes_rows(sql):
    return sql.split()[0] in ("INSERT", "DELETE", "UPDATE")


def run_until_killed(extension, database, journal, seed, target, nth, delay):
    """Kills the worker `delay` seconds after it starts its `nth` statement of kind `target`."""
    proc = subprocess.Popen([sys.executable, str(WORKER), str(extension), str(database), str(journal), str(seed)])
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, f"worker exited early with {proc.returncode}"
            assert time.monotonic() < deadline, f"worker never ran {target} {nth} times"
            lines = journal.read_text().splitlines() if journal.exists() else []
            seen = sum(1 for line in lines if line.startswith(f'intent "{target}'))
            if seen >= nth:
                break
            time.sleep(0.002)
        time.sleep(delay)
    finally:
        proc.kill()
        proc.wait()


def test_committed_writes_survive_sigkill(tmp_path, extension_path):
    database = tmp_path / "crash.duckdb"
    oracle = duckdb.connect()
    oracle.execute("CREATE TABLE t (id INTEGER, ver INTEGER, v FLOAT[32])")
    rng = random.Random(20261122)
    killed_in = {}
    for round_no in range(ROUNDS):
        journal = tmp_path / f"journal-{round_no}.txt"
        target = KINDS[round_no % len(KINDS)]
        run_until_killed(extension_path, database, journal, round_no + 1, target, rng.randint(1, 3), rng.uniform(0, 0.05))
        done, inflight = read_journal(journal)
        kind = (inflight or "idle").split()[0]
        killed_in[kind] = killed_in.get(kind, 0) + 1
        for sql in done:
            if changes_rows(sql):
                oracle.execute(sql)

        con = duckdb.connect(str(database), config={"allow_unsigned_extensions": "true"})
        try:
            con.execute(f"LOAD '{extension_path}'")
            actual = rows(con)
            if inflight and changes_rows(inflight) and actual != rows(oracle):
                oracle.execute("BEGIN")
                oracle.execute(inflight)
                if rows(oracle) == actual:
                    oracle.execute("COMMIT")
                else:
                    oracle.execute("ROLLBACK")
            expected = rows(oracle)
            assert actual == expected, f"round {round_no}: {len(actual)} rows, {len(expected)} committed"
            assert con.execute(VECTOR_CHECK).fetchone()[0] == 0, f"round {round_no}: damaged vectors"
            check_index(con, round_no, rng)
        finally:
            con.close()
    # Kills landed while each kind of write was running (not only between statements).
    for kind in ("INSERT", "DELETE", "UPDATE", "CHECKPOINT", "CREATE"):
        assert killed_in.get(kind, 0) > 0, f"no kill inside {kind}: {killed_in}"


def check_index(con, round_no, rng):
    info = con.execute("SELECT count FROM pragma_hnsw_index_info()").fetchall()
    if not info:
        return
    total = con.execute("SELECT count(*) FROM t").fetchone()[0]
    assert info[0][0] == total, f"round {round_no}: index holds {info[0][0]} rows, table {total}"
    if total == 0:
        return
    # ef covering the whole table makes the graph search exhaustive: answers must equal exact.
    con.execute(f"SET hnsw_ef_search = {max(total, 10)}")
    ids = [r[0] for r in con.execute("SELECT id FROM t USING SAMPLE 4 ROWS (reservoir, %d)" % rng.randint(0, 10**6)).fetchall()]
    for qid in ids[:SAMPLES]:
        q = f"(SELECT v FROM t WHERE id = {qid})"
        plan = con.execute(f"EXPLAIN SELECT id FROM t ORDER BY array_distance(v, {q}) LIMIT 5").fetchall()[0][1]
        assert "HNSW_INDEX_SCAN" in plan.upper().replace(" ", "_"), f"round {round_no}: index not used"
        got = con.execute(f"SELECT array_distance(v, {q}) AS d FROM t ORDER BY d LIMIT 5").fetchall()
        want = con.execute(f"SELECT array_distance(v, {q}) + 0 AS d FROM t ORDER BY d LIMIT 5").fetchall()
        assert got == want, f"round {round_no}, query {qid}: index {got} != exact {want}"
