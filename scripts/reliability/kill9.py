"""kill -9 reliability run (issue 16): a writer process (scripts/reliability/crash_worker.py) is
SIGKILLed at seeded random points while it runs INSERT, DELETE, UPDATE, CHECKPOINT, CREATE INDEX,
DROP INDEX or PRAGMA hnsw_compact_index('t_v') on a file database with an HNSW index; the table
starts with 1,000 rows. Round r aims at one kind (round-robin), waits until the worker starts its
n-th statement of that kind (n in 1..3) and kills it at once, within 5 ms or within 50 ms (each
kind gets each delay class every 21 rounds), so the kill lands inside that statement or one of the
next ones. After every kill a fresh connection in this process opens the file (replaying the WAL)
and checks:

  - rows: the table holds exactly the committed rows, against an in-memory DuckDB that replays
    the journalled statements that committed (the one statement cut short may have committed or
    not; either is accepted), and every vector is the one its (id, ver) defines (no two equal);
  - catalog: the index exists exactly when the committed CREATE / DROP INDEX say so;
  - index vs table: pragma_hnsw_index_info() `count` and hnsw_index_health() `live` equal
    count(*), the index is usable, every live row is found by a search for its own vector at
    distance 0 (one LATERAL index search per row at ef 128; a miss is searched again at
    ef = the row count), hnsw_search names only rows of the table, and the top-10 of random
    non-stored queries (plain and filtered) at ef >= the row count equals exact search. Rows that
    hnsw_index_health reports unreachable are counted apart (README: CHECKPOINT relinks them;
    they occur without kills too), and the check then requires a CHECKPOINT to make them found.

Prints the kills by kind (what was running when the kill landed), rows lost, disagreements and
the wall time; --report also writes them to bench-results/reliability-kill9.md. Exits 1 on any
problem, keeping the database, the journals and a copy of the files as the failing kill left them.
test/test_persistence_crash.py runs a shorter series through the same code.

    make reliability   # or: .venv/bin/python -m scripts.reliability.kill9 [--rounds N] [--seed S]
                       #     [--extension PATH] [--workdir DIR] [--report]
"""
import argparse
import collections
import hashlib
import json
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

import duckdb

from scripts.reliability.crash_worker import COMPACT, DIM, VECTOR

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "build" / "release" / "hnsw.duckdb_extension"
WORKER = pathlib.Path(__file__).with_name("crash_worker.py")
# The kinds of statement a round aims its kill at, and how each one's SQL starts.
KINDS = {
    "INSERT": "INSERT",
    "DELETE": "DELETE",
    "UPDATE": "UPDATE",
    "CHECKPOINT": "CHECKPOINT",
    "CREATE INDEX": "CREATE INDEX",
    "DROP INDEX": "DROP INDEX",
    "COMPACT": COMPACT,
}
VECTOR_CHECK = f"SELECT count(*) FROM t WHERE v IS DISTINCT FROM {VECTOR}"
SELF_SEARCH_EF = 128  # each row looks for itself at k = 1: a generous ef for that
INITIAL_ROWS = 1000
SAMPLES = 8  # rows whose own vector goes through hnsw_search per check
RANDOM_QUERIES = 3  # non-stored queries compared with exact search (plain and filtered) per check
K = 10
# What the checks counted (beside the disagreements), in the order the summary prints them.
STATS = ("statements_committed", "inflight_committed", "rows_checked", "index_checks", "rows_self_searched",
         "hnsw_search_queries", "exact_queries", f"self_search_misses_at_ef_{SELF_SEARCH_EF}", "unreachable_at_reopen",
         "unreachable_until_checkpoint", "exact_differs_by_unreachable_rows", "checkpoints_to_relink")
DISAGREEMENTS = ("catalog", "unusable", "info_count", "health_live", "not_found_by_own_vector",
                 "phantom_rows", "own_row_not_first", "index_not_used", "differs_from_exact", "not_relinked")


def kind_of(sql):
    """The KINDS label of a journalled statement, or None."""
    if sql is None:
        return None
    for kind, prefix in KINDS.items():
        if sql.startswith(prefix):
            return kind
    return sql.split()[0]


def changes_rows(sql):
    return kind_of(sql) in ("INSERT", "DELETE", "UPDATE")


def read_journal(path):
    """Statements that committed, and the one that may have been cut short (or None)."""
    done, inflight = [], None
    if not path.exists():
        return done, inflight
    for line in path.read_text().splitlines():
        if line.startswith("intent "):
            inflight = json.loads(line[len("intent "):])
        elif line == "done" and inflight is not None:
            done.append(inflight)
            inflight = None
    return done, inflight


def run_until_killed(extension, database, journal, seed, target, nth, delay):
    """Starts a worker and kills it (SIGKILL) `delay` seconds after it starts its `nth` statement
    of kind `target`."""
    proc = subprocess.Popen([sys.executable, str(WORKER), str(extension), str(database), str(journal), str(seed)],
                            stderr=subprocess.PIPE)
    prefix = 'intent "' + KINDS[target]
    deadline = time.monotonic() + 120
    seen, pending = 0, ""
    with open(journal, "a+") as tail:  # created here, so the worker only appends to it
        tail.seek(0)
        try:
            while seen < nth:
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited early with {proc.returncode}: "
                                       f"{proc.stderr.read().decode(errors='replace')[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker never ran {target} {nth} times in 120 s")
                pending += tail.read()
                *lines, pending = pending.split("\n")
                seen += sum(1 for line in lines if line.startswith(prefix))
                if seen < nth:
                    time.sleep(0.0002)
            if delay:
                time.sleep(delay)
        finally:
            proc.kill()
            proc.wait()
            proc.stderr.close()


class Oracle:
    """An in-memory DuckDB holding what the file should hold: the committed row-changing
    statements replayed, and whether the index should exist."""

    def __init__(self):
        self.con = duckdb.connect()
        self.con.execute(f"CREATE TABLE t (id INTEGER, ver INTEGER, v FLOAT[{DIM}])")
        self.has_index = False

    def apply(self, sql):
        kind = kind_of(sql)
        if changes_rows(sql):
            self.con.execute(sql)
        elif kind == "CREATE INDEX":
            self.has_index = True
        elif kind == "DROP INDEX":
            self.has_index = False

    def rows(self):
        return rows(self.con)

    def reset(self, actual):
        """Takes the file's rows as the truth from now on (after a reported mismatch), so later
        rounds are judged on their own."""
        self.con.execute("DELETE FROM t")
        if actual:
            self.con.executemany("INSERT INTO t (id, ver) VALUES (?, ?)", actual)
            self.con.execute(f"UPDATE t SET v = {VECTOR}")


def rows(con):
    return con.execute("SELECT id, ver FROM t ORDER BY id, ver").fetchall()


def vector_literal(values):
    return "[" + ",".join(f"{x:.6f}" for x in values) + f"]::FLOAT[{DIM}]"


def check_index(con, rng, total, stats, problems, where):
    """Index vs table on a freshly reopened database; disagreements go to stats and problems.

    The index may hold live rows that no search reaches (hnsw_index_health counts them as
    `unreachable`, README: "CHECKPOINT relinks them"); they arise in uninterrupted sessions too.
    Rows missed only for that reason, and top-k answers that differ from exact search only by
    such rows, are counted apart (`unreachable_until_checkpoint`); the check then runs a
    CHECKPOINT and requires every row to be found.
    """

    def disagree(kind, message):
        stats[kind] += 1
        problems.append(f"{where}: {kind}: {message}")

    info = con.execute("SELECT count, unusable_reason FROM pragma_hnsw_index_info() "
                       "WHERE index_name = 't_v'").fetchall()
    count, unusable = info[0]
    if unusable is not None:
        disagree("unusable", unusable)
        return
    if count != total:
        disagree("info_count", f"pragma_hnsw_index_info count {count}, table {total}")
    live, unreachable = con.execute("SELECT live, unreachable FROM hnsw_index_health('t_v')").fetchone()
    stats["unreachable_at_reopen"] += unreachable
    if live != total:
        disagree("health_live", f"hnsw_index_health live {live}, table {total}")
    if total == 0:
        return
    exhaustive = min(max(total, 64), 100_000)  # ef visiting every node the graph reaches

    def own_search(rowid, v, k=1):
        """hnsw_search for a row's own vector at the exhaustive ef: does it come first at distance 0?"""
        got = con.execute(f"SELECT row_id, distance FROM hnsw_search('t_v', $1::FLOAT[{DIM}], {k}, "
                          f"ef := {exhaustive})", [v]).fetchall()
        return got, bool(got) and got[0] == (rowid, 0.0)

    # Every live row, searched for with its own vector (one index search per row), comes first at
    # distance 0 (the vectors are all distinct: checked by the caller). A row missed at this ef is
    # searched for again through hnsw_search at the exhaustive ef: a row missed there too is
    # unreachable (see above) or not in the index.
    con.execute(f"SET hnsw_ef_search = {SELF_SEARCH_EF}")
    self_search = ("SELECT q.rowid, q.v FROM t q LEFT JOIN LATERAL (SELECT id, array_distance(v, q.v) AS d FROM t "
                   "ORDER BY d LIMIT 1) p ON true WHERE p.id IS DISTINCT FROM q.id OR p.d <> 0")
    plan = con.execute("EXPLAIN " + self_search).fetchall()[0][1]
    if "HNSW_INDEX_SCAN" not in plan:
        disagree("index_not_used", "the self-search join does not use the index")
    missed = con.execute(self_search).fetchall()
    stats["rows_self_searched"] += total
    stats[f"self_search_misses_at_ef_{SELF_SEARCH_EF}"] += len(missed)
    lost = {rowid: v for rowid, v in missed if not own_search(rowid, v)[1]}
    if len(lost) > unreachable:
        disagree("not_found_by_own_vector", f"{len(lost)} of {total} live rows not found "
                 f"(row ids {sorted(lost)[:10]}), {unreachable} reported unreachable")
    else:
        stats["unreachable_until_checkpoint"] += len(lost)

    # hnsw_search answers name only rows of the table; a row's own vector finds it first.
    rowids = {r[0] for r in con.execute("SELECT rowid FROM t").fetchall()}
    sample = con.execute(f"SELECT rowid, v FROM t USING SAMPLE {SAMPLES} ROWS (reservoir, {rng.randint(0, 10**6)})"
                         ).fetchall()
    for rowid, v in sample:
        got, first = own_search(rowid, v, K)
        stats["hnsw_search_queries"] += 1
        phantom = [r for r, _ in got if r not in rowids]
        if phantom:
            disagree("phantom_rows", f"hnsw_search named row ids {phantom} that the table does not hold")
        if not first and rowid not in lost:
            disagree("own_row_not_first", f"row {rowid}: hnsw_search answered {got[:3]}")

    # Random non-stored queries at the exhaustive ef: the answer must equal exact search (a second
    # ORDER BY key keeps the exact plan), but for unreachable rows (dropped from the exact answer).
    def compare_with_exact():
        con.execute(f"SET hnsw_ef_search = {exhaustive}")
        for _ in range(RANDOM_QUERIES):
            q = vector_literal([rng.uniform(-1, 1) for _ in range(DIM)])
            for where_clause in ("", "WHERE id % 3 = 0"):
                sql = f"SELECT rowid, id, array_distance(v, {q}) AS d FROM t {where_clause} ORDER BY d"
                plan = con.execute(f"EXPLAIN {sql} LIMIT {K}").fetchall()[0][1]
                if "HNSW_INDEX_SCAN" not in plan:
                    disagree("index_not_used", f"top-k query {where_clause or 'without filter'}")
                got = con.execute(f"{sql} LIMIT {K}").fetchall()
                want = con.execute(f"{sql}, id LIMIT {K + len(lost)}").fetchall()
                stats["exact_queries"] += 1
                if got == want[:K]:
                    continue
                if got == [r for r in want if r[0] not in lost][:K]:
                    stats["exact_differs_by_unreachable_rows"] += 1
                else:
                    disagree("differs_from_exact", f"{where_clause or 'plain'} top-{K}: index {got} != exact {want}")

    compare_with_exact()

    # The documented repair: after a CHECKPOINT no row is unreachable and every one is found.
    if unreachable or lost:
        stats["checkpoints_to_relink"] += 1
        con.execute("CHECKPOINT")
        still = con.execute("SELECT unreachable FROM hnsw_index_health('t_v')").fetchone()[0]
        not_found = [rowid for rowid, v in lost.items() if not own_search(rowid, v)[1]]
        if still or not_found:
            disagree("not_relinked", f"after CHECKPOINT {still} unreachable, rows {not_found[:10]} still not found")
        lost = {}
        compare_with_exact()


def check_restart(database, extension, oracle, done, inflight, rng, stats, problems, where):
    """Opens the killed worker's database in this process and checks it against the oracle."""
    for sql in done:
        oracle.apply(sql)
    con = duckdb.connect(str(database), config={"allow_unsigned_extensions": "true"})
    try:
        con.execute(f"LOAD '{extension}'")
        actual = rows(con)
        expected = oracle.rows()
        if inflight and changes_rows(inflight) and actual != expected:
            # The statement cut short committed before the kill (its "done" was not written yet).
            oracle.con.execute("BEGIN")
            oracle.con.execute(inflight)
            if rows(oracle.con) == actual:
                oracle.con.execute("COMMIT")
                expected = actual
                stats["inflight_committed"] += 1
            else:
                oracle.con.execute("ROLLBACK")
        stats["rows_checked"] += len(actual)
        lost = collections.Counter(expected) - collections.Counter(actual)
        extra = collections.Counter(actual) - collections.Counter(expected)
        if lost or extra:
            stats["rows_lost"] += sum(lost.values())
            stats["rows_extra"] += sum(extra.values())
            problems.append(f"{where}: {len(actual)} rows, {len(expected)} committed: lost {sorted(lost)[:5]}, "
                            f"uncommitted {sorted(extra)[:5]}")
            oracle.reset(actual)
        damaged = con.execute(VECTOR_CHECK).fetchone()[0]
        if damaged:
            stats["vectors_damaged"] += damaged
            problems.append(f"{where}: {damaged} vectors differ from their (id, ver)")
        duplicates = con.execute("SELECT count(*) - count(DISTINCT v) FROM t").fetchone()[0]
        if duplicates:
            problems.append(f"{where}: {duplicates} duplicate vectors (the self-search check assumes none)")

        has_index = con.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = 't_v'").fetchone()[0] > 0
        if kind_of(inflight) in ("CREATE INDEX", "DROP INDEX"):
            oracle.has_index = has_index  # cut short: either outcome is fine
        if has_index != oracle.has_index:
            stats["catalog"] += 1
            problems.append(f"{where}: index exists: {has_index}, committed DDL says {oracle.has_index}")
            oracle.has_index = has_index
        if has_index:
            stats["index_checks"] += 1
            check_index(con, rng, len(actual), stats, problems, where)
    finally:
        con.close()


def run(rounds, seed, extension=EXTENSION, workdir=None, log=None):
    """Runs `rounds` kill/restart/check rounds; returns the summary dict (see summary_lines)."""
    started = time.monotonic()
    own_dir = workdir is None
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="hnsw-kill9-") if own_dir else workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "kill9.duckdb"
    for suffix in ("", ".wal"):
        pathlib.Path(f"{database}{suffix}").unlink(missing_ok=True)
    rng = random.Random(seed)
    oracle = Oracle()
    # The file starts with INITIAL_ROWS committed rows (and no index), so that CREATE INDEX and
    # compaction have work to be killed in from the first round.
    seed_rows = (f"INSERT INTO t SELECT id, 0 AS ver, {VECTOR} AS v FROM "
                 f"(SELECT range::INTEGER AS id, 0 AS ver FROM range(1, {INITIAL_ROWS + 1}))")
    with duckdb.connect(str(database)) as con:
        con.execute(f"CREATE TABLE t (id INTEGER, ver INTEGER, v FLOAT[{DIM}])")
        con.execute(seed_rows)
    oracle.apply(seed_rows)
    stats = collections.Counter()
    killed_in, aimed_at, problems = collections.Counter(), collections.Counter(), []
    targets = list(KINDS)
    completed = 0
    try:
        for round_no in range(rounds):
            target = targets[round_no % len(targets)]
            journal = workdir / f"journal-{round_no}.txt"
            # A third of the kills come at once (DROP INDEX and small compactions take about a
            # millisecond), a third within 5 ms, a third within 50 ms: every 21 rounds each kind
            # gets each of the three.
            nth = rng.randint(1, 3)
            delay = rng.uniform(0, (0, 0.005, 0.05)[round_no // len(targets) % 3])
            try:
                run_until_killed(extension, database, journal, seed * 100_003 + round_no, target, nth, delay)
            except RuntimeError as ex:
                problems.append(f"round {round_no}: {ex}")
                stats["worker_failures"] += 1
                break
            aimed_at[target] += 1
            done, inflight = read_journal(journal)
            killed_in[kind_of(inflight) or "between statements"] += 1
            stats["statements_committed"] += len(done)
            where = f"round {round_no} (aimed at {target}, killed in {kind_of(inflight) or 'between statements'})"
            # The files as the kill left them, kept if this round finds a problem (the check's own
            # session replays the WAL and checkpoints on close).
            kept = workdir / f"round-{round_no}.duckdb"
            for suffix in ("", ".wal"):
                if pathlib.Path(f"{database}{suffix}").exists():
                    shutil.copyfile(f"{database}{suffix}", f"{kept}{suffix}")
            before = len(problems)
            try:
                check_restart(database, extension, oracle, done, inflight, rng, stats, problems, where)
            except duckdb.Error as ex:
                problems.append(f"{where}: reopening or checking failed: {type(ex).__name__}: {ex}")
                stats["reopen_failures"] += 1
                break
            finally:
                if len(problems) == before:
                    for suffix in ("", ".wal"):
                        pathlib.Path(f"{kept}{suffix}").unlink(missing_ok=True)
                else:
                    problems.append(f"round {round_no}: the files as the kill left them: {kept}")
            completed += 1
            if log and (round_no + 1) % 10 == 0:
                log(f"  {round_no + 1}/{rounds} rounds, {time.monotonic() - started:.0f} s, "
                    f"{len(oracle.rows())} rows, {len(problems)} problems")
        final_rows = len(oracle.rows())
    finally:
        oracle.con.close()
        if own_dir and not problems:
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "rounds": rounds,
        "kills": completed,
        "seed": seed,
        "killed_in": dict(killed_in),
        "aimed_at": dict(aimed_at),
        "rows_lost": stats["rows_lost"],
        "rows_extra": stats["rows_extra"],
        "vectors_damaged": stats["vectors_damaged"],
        "disagreements": {kind: stats[kind] for kind in DISAGREEMENTS},
        "disagreement_total": sum(stats[kind] for kind in DISAGREEMENTS),
        "failures": stats["worker_failures"] + stats["reopen_failures"],
        "problems": problems,
        "final_rows": final_rows,
        "stats": {key: stats[key] for key in STATS},
        "seconds": time.monotonic() - started,
        "workdir": None if own_dir and not problems else str(workdir),
    }


def artifact(path):
    """The extension file with its modification time and a short hash, so a report names its build."""
    stat = pathlib.Path(path).stat()
    digest = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()[:12]
    return f"{path} (modified {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(stat.st_mtime))}, sha256 {digest})"


def summary_lines(summary):
    s = summary
    order = list(KINDS) + ["between statements"]
    kinds = ", ".join(f"{k} {s['killed_in'].get(k, 0)}" for k in order if s["killed_in"].get(k, 0) or k in KINDS)
    lines = [
        f"kills: {s['kills']} of {s['rounds']} rounds (seed {s['seed']}), {s['seconds']:.1f} s wall time",
        f"killed while running: {kinds}",
        f"kills aimed at: {', '.join(f'{k} {v}' for k, v in s['aimed_at'].items())}",
        f"rows lost: {s['rows_lost']}, uncommitted rows present: {s['rows_extra']}, "
        f"vectors damaged: {s['vectors_damaged']}",
        f"index/table disagreements: {s['disagreement_total']} "
        f"({', '.join(f'{k} {v}' for k, v in s['disagreements'].items())})",
        f"failures (worker or reopen): {s['failures']}",
        "checked: " + ", ".join(f"{k} {v}" for k, v in s["stats"].items()) + f", rows at the end {s['final_rows']}",
    ]
    lines += [f"problem: {p}" for p in s["problems"][:50]]
    if s["workdir"] and s["problems"]:
        lines.append(f"database and journals kept in {s['workdir']}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=140)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--extension", type=pathlib.Path, default=EXTENSION)
    ap.add_argument("--workdir", type=pathlib.Path, help="keep the database and journals here")
    ap.add_argument("--report", action="store_true", help="also write bench-results/reliability-kill9.md")
    args = ap.parse_args()
    if not args.extension.exists():
        sys.exit(f"{args.extension} is missing: run `make` first")
    print(f"kill -9 run: {args.rounds} rounds, seed {args.seed}, {artifact(args.extension)}", flush=True)
    summary = run(args.rounds, args.seed, args.extension, args.workdir, log=lambda m: print(m, flush=True))
    lines = summary_lines(summary)
    print("\n".join(lines))
    if args.report:
        from scripts.common import command_line, machine, write_report

        write_report(ROOT / "bench-results" / "reliability-kill9.md",
                     ["# kill -9 reliability run", "", f"`{command_line()}` on {machine()}, "
                      f"DuckDB {duckdb.__version__}, {time.strftime('%Y-%m-%d')}, {artifact(args.extension)}", "",
                      "```", *lines, "```"],
                     echo=False)
    ok = summary["rows_lost"] == 0 and summary["disagreement_total"] == 0 and not summary["problems"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
