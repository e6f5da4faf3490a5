"""Readers + a writer + checkpoints on one file database with an HNSW index, for a fixed time; every
row an index query returns is checked against the reader's own snapshot (issue 16).

  - table t(id INTEGER, ver INTEGER, v FLOAT[32]), 3,000 rows, index t_v (HNSW, l2sq);
  - writer (own cursor): small transactions of INSERT / DELETE / UPDATE (new vector, ver + 1),
    1-3 statements each, then COMMIT;
  - checkpointer (own cursor): a plain CHECKPOINT every 0.2-0.5 s. DuckDB refuses it with
    "Cannot CHECKPOINT: there are other write transactions active" while the writer is inside an
    UPDATE, or while a reader's transaction began before an UPDATE that has committed since (the
    committed UPDATE keeps its checkpoint lock until then); that documented conflict is retried
    every 10 ms until the next interval and counted;
  - 3 readers (each its own cursor, opened once before its loop): BEGIN TRANSACTION; the whole
    snapshot (SELECT rowid, id, ver, v FROM t); 4 query vectors, each through three index plans
    (ORDER BY array_distance(v, q) LIMIT 10; the same with WHERE id % 3 = 0; hnsw_search joined to
    t on rowid); each returned row must be in the snapshot with the same ver and vector, its
    distance must equal NumPy's over the snapshot, the ORDER BY answers must hold min(k, matching
    rows) rows, and recall@10 against NumPy's exact top-10 over the snapshot is recorded (ef_search
    256); the snapshot's count(*) is read again before COMMIT.
  - EXPLAIN shows HNSW_INDEX_SCAN for both ORDER BY shapes before the threads start.

No FORCE CHECKPOINT, and no cursor is opened inside an open transaction: FORCE CHECKPOINT waits for
every transaction holding DuckDB's checkpoint lock (a committed UPDATE holds it while an older
reader is open) and keeps new transactions from starting meanwhile, so a reader that starts a
second transaction inside its own deadlocks it (docs/upstream/checkpoint_hang.md).

Any exception other than those conflicts is a violation, as is a thread still running 60 s after
the end (a hang; Python stacks are dumped). test/test_concurrency_snapshot.py runs it for 8 s.

    make reliability   # or: .venv/bin/python -m scripts.reliability.concurrency [--seconds 60]
                       #     [--readers 3] [--seed S] [--extension PATH] [--json] [--report]
"""
import argparse
import faulthandler
import json
import os
import pathlib
import random
import sys
import tempfile
import threading
import time

import duckdb
import numpy as np
import pyarrow as pa

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "build" / "release" / "hnsw.duckdb_extension"
DIM = 32
ROWS = 3000
K = 10
EF = 256
QUERIES_PER_TRANSACTION = 4
RECALL_FLOOR = 0.9
HANG_SECONDS = 60  # a thread still running this long after the end counts as a hang
CHECKPOINT_CONFLICT = "Cannot CHECKPOINT"
PLAIN = f"SELECT rowid, id, ver, v, array_distance(v, $1::FLOAT[{DIM}]) AS d FROM t ORDER BY d LIMIT {K}"
FILTERED = (f"SELECT rowid, id, ver, v, array_distance(v, $1::FLOAT[{DIM}]) AS d FROM t WHERE id % 3 = 0 "
            f"ORDER BY d LIMIT {K}")
SEARCH = (f"SELECT s.row_id, t.id, t.ver, t.v, s.distance FROM hnsw_search('t_v', $1::FLOAT[{DIM}], {K}, ef := {EF}) s "
          "JOIN t ON t.rowid = s.row_id ORDER BY s.distance")


def random_vectors(rng, n):
    return rng.standard_normal((n, DIM)).astype(np.float32)


def vector_param(vec):
    return [float(x) for x in vec]


def connect(path, extension):
    con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")
    return con


class Run:
    def __init__(self, seconds, readers, seed, extension, path):
        self.seconds, self.readers, self.seed = seconds, readers, seed
        self.extension, self.path = extension, path
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(
            ("reader_transactions", "queries_checked", "rows_checked", "writes_committed", "write_statements",
             "write_conflicts", "checkpoints", "checkpoint_conflicts", "hnsw_search_rows_outside_snapshot"), 0)
        self.recalls = []
        self.violations = []

    def add(self, **counts):
        with self.lock:
            for key, value in counts.items():
                self.counts[key] += value

    def violation(self, message):
        with self.lock:
            self.violations.append(message)

    # -- setup -------------------------------------------------------------------------------------
    def setup(self):
        con = connect(self.path, self.extension)
        rng = np.random.default_rng(self.seed)
        con.execute(f"CREATE TABLE t (id INTEGER, ver INTEGER, v FLOAT[{DIM}])")
        vectors = random_vectors(rng, ROWS)
        batch = pa.table({"id": np.arange(ROWS, dtype=np.int32), "ver": np.zeros(ROWS, dtype=np.int32),
                          "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)})
        con.register("batch", batch)
        con.execute(f"INSERT INTO t SELECT id, ver, v::FLOAT[{DIM}] FROM batch")
        con.unregister("batch")
        con.execute("CREATE INDEX t_v ON t USING HNSW (v) WITH (M = 16, ef_construction = 128)")
        con.execute("CHECKPOINT")
        q = vector_param(vectors[0])
        for name, sql in (("plain", PLAIN), ("filtered", FILTERED)):
            plan = con.execute("EXPLAIN " + sql, [q]).fetchall()[0][1]
            if "HNSW_INDEX_SCAN" not in plan:
                self.violation(f"the {name} top-k query does not use the index")
        return con

    # -- threads -----------------------------------------------------------------------------------
    def writer(self, con, stop):
        cur = con.cursor()
        rng = random.Random(self.seed + 1)
        nprng = np.random.default_rng(self.seed + 1)
        live = set(range(ROWS))  # ids committed so far (this is the only writer)
        next_id = ROWS
        while not stop.is_set():
            statements, inserted, deleted = [], [], []
            for _ in range(rng.randint(1, 3)):
                kind = rng.choices(["insert", "delete", "update"], [4, 3, 3])[0]
                if kind == "insert" or len(live) < ROWS // 2:
                    n = rng.randint(1, 8)
                    ids = list(range(next_id, next_id + n))
                    next_id += n
                    rows = [(i, vector_param(v)) for i, v in zip(ids, random_vectors(nprng, n))]
                    statements.append(("INSERT INTO t VALUES (?, 0, ?::FLOAT[32])", rows))
                    inserted += ids
                else:
                    ids = rng.sample(sorted(live - set(deleted)), min(rng.randint(1, 6), len(live) - len(deleted)))
                    if kind == "delete":
                        statements.append((f"DELETE FROM t WHERE id IN ({', '.join(map(str, ids))})", None))
                        deleted += ids
                    else:
                        rows = [(vector_param(v), i) for i, v in zip(ids, random_vectors(nprng, len(ids)))]
                        statements.append(("UPDATE t SET ver = ver + 1, v = ?::FLOAT[32] WHERE id = ?", rows))
            try:
                cur.execute("BEGIN TRANSACTION")
                for sql, rows in statements:
                    if rows is None:
                        cur.execute(sql)
                    else:
                        cur.executemany(sql, rows)
                cur.execute("COMMIT")
            except duckdb.TransactionException as ex:
                # DuckDB's documented write-write conflict (not expected with one writer) is
                # counted; any other transaction error is a violation.
                self.add(write_conflicts=1)
                if "conflict" not in str(ex).lower():
                    self.violation(f"writer: {type(ex).__name__}: {ex}")
                try:
                    cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                continue
            live |= set(inserted)
            live -= set(deleted)
            self.add(writes_committed=1, write_statements=len(statements))

    def checkpointer(self, con, stop):
        cur = con.cursor()
        rng = random.Random(self.seed + 2)
        while not stop.is_set():
            due = time.monotonic() + rng.uniform(0.2, 0.5)
            while not stop.is_set() and time.monotonic() < due:
                try:
                    cur.execute("CHECKPOINT")
                    self.add(checkpoints=1)
                    break
                except duckdb.TransactionException as ex:
                    if CHECKPOINT_CONFLICT not in str(ex):
                        raise
                    self.add(checkpoint_conflicts=1)
                    time.sleep(0.01)
            stop.wait(max(0.0, due - time.monotonic()))

    def reader(self, con, stop, number):
        cur = con.cursor()  # opened here, never inside an open transaction (see the module docstring)
        cur.execute(f"SET hnsw_ef_search = {EF}")
        nprng = np.random.default_rng(self.seed + 10 + number)
        while not stop.is_set():
            cur.execute("BEGIN TRANSACTION")
            table = cur.sql("SELECT rowid, id, ver, v FROM t").to_arrow_table()
            rowids = table.column("rowid").to_numpy()
            ids = table.column("id").to_numpy()
            vers = table.column("ver").to_numpy()
            vectors = np.asarray(table.column("v").combine_chunks().values).reshape(-1, DIM)
            by_rowid = {int(r): i for i, r in enumerate(rowids)}
            if len(by_rowid) != len(rowids):
                self.violation(f"reader {number}: duplicate rowids in one snapshot")
            filtered = ids % 3 == 0
            queries_checked = rows_checked = outside = 0
            for _ in range(QUERIES_PER_TRANSACTION):
                # Half the queries are a stored vector moved a little, half fresh random vectors.
                if len(vectors) and nprng.random() < 0.5:
                    q = vectors[nprng.integers(len(vectors))] + 0.1 * random_vectors(nprng, 1)[0]
                else:
                    q = random_vectors(nprng, 1)[0]
                exact = np.sqrt(((vectors.astype(np.float64) - q.astype(np.float64)) ** 2).sum(axis=1))
                for name, sql, mask in (("plain", PLAIN, None), ("filtered", FILTERED, filtered),
                                        ("hnsw_search", SEARCH, None)):
                    got = cur.execute(sql, [vector_param(q)]).fetchall()
                    queries_checked += 1
                    rows_checked += len(got)
                    outside += self.check(number, name, got, q, exact, mask, by_rowid, ids, vers, vectors)
            count = cur.execute("SELECT count(*) FROM t").fetchone()[0]
            if count != len(rowids):
                self.violation(f"reader {number}: count(*) {count} != snapshot's {len(rowids)} rows in one transaction")
            cur.execute("COMMIT")
            self.add(reader_transactions=1, queries_checked=queries_checked, rows_checked=rows_checked,
                     hnsw_search_rows_outside_snapshot=outside)

    def check(self, number, name, got, q, exact, mask, by_rowid, ids, vers, vectors):
        """Checks one answer against the snapshot; returns how many hnsw_search rows it could not see."""
        where = f"reader {number}, {name}"
        candidates = np.arange(len(ids)) if mask is None else np.flatnonzero(mask)
        if name != "hnsw_search" and len(got) != min(K, len(candidates)):
            self.violation(f"{where}: {len(got)} rows, the snapshot has {len(candidates)} matching rows (k = {K})")
        seen, previous = set(), -1.0
        for rowid, id_, ver, vec, distance in got:
            i = by_rowid.get(rowid)
            if i is None:
                self.violation(f"{where}: row {rowid} (id {id_}) is not in the reader's snapshot")
                continue
            if ids[i] != id_ or vers[i] != ver or not np.array_equal(np.asarray(vec, dtype=np.float32), vectors[i]):
                self.violation(f"{where}: row {rowid} is (id {id_}, ver {ver}), the snapshot has "
                               f"(id {ids[i]}, ver {vers[i]}) or another vector")
            if mask is not None and not mask[i]:
                self.violation(f"{where}: row id {id_} does not match the filter")
            want = exact[i] ** 2 if name == "hnsw_search" else exact[i]
            if not np.isclose(distance, want, rtol=1e-4, atol=1e-5):
                self.violation(f"{where}: row {rowid} distance {distance}, NumPy {want}")
            if distance < previous - 1e-6:
                self.violation(f"{where}: distances not ascending ({previous} then {distance})")
            previous = distance
            seen.add(i)
        if name == "hnsw_search":
            # hnsw_search reads the index's latest committed state; rows this snapshot cannot see
            # (inserted or re-versioned since it began) drop out of the join.
            return K - len(got) if len(candidates) >= K else 0
        if len(candidates):
            top = candidates[np.argsort(exact[candidates], kind="stable")[:K]]
            kth = exact[top[-1]]
            hits = sum(1 for i in seen if exact[i] <= kth + 1e-6)
            with self.lock:
                self.recalls.append(hits / len(top))
        return 0

    # -- driver ------------------------------------------------------------------------------------
    def run(self):
        started = time.monotonic()
        con = self.setup()
        stop = threading.Event()

        def guarded(name, target, *args):
            def body():
                try:
                    target(con, stop, *args)
                except Exception as ex:  # noqa: BLE001 - anything not handled inside is a violation
                    self.violation(f"{name}: {type(ex).__name__}: {ex}")
                    stop.set()
            return threading.Thread(target=body, name=name, daemon=True)

        threads = [guarded("writer", self.writer), guarded("checkpointer", self.checkpointer)]
        threads += [guarded(f"reader {n}", self.reader, n) for n in range(self.readers)]
        for th in threads:
            th.start()
        stop.wait(self.seconds)
        stop.set()
        deadline = time.monotonic() + HANG_SECONDS
        for th in threads:
            th.join(max(0.0, deadline - time.monotonic()))
        hung = [th.name for th in threads if th.is_alive()]
        if hung:
            self.violation(f"hang: {', '.join(hung)} still running {HANG_SECONDS} s after the end")
            faulthandler.dump_traceback(sys.stderr)
        else:
            final = con.execute("SELECT count(*) FROM t").fetchone()[0]
            info = con.execute("SELECT count FROM pragma_hnsw_index_info() WHERE index_name = 't_v'").fetchone()[0]
            if info != final:
                self.violation(f"after the run: the index holds {info} rows, the table {final}")
            con.close()
        recalls = self.recalls
        mean_recall = float(np.mean(recalls)) if recalls else 0.0
        if recalls and mean_recall < RECALL_FLOOR:
            self.violation(f"mean recall@{K} {mean_recall:.3f} < {RECALL_FLOOR}")
        return {
            "seconds": self.seconds,
            "wall_seconds": round(time.monotonic() - started, 1),
            "readers": self.readers,
            "seed": self.seed,
            **self.counts,
            "recall_queries": len(recalls),
            "mean_recall": round(mean_recall, 4),
            "min_recall": round(float(np.min(recalls)), 2) if recalls else None,
            "violations": len(self.violations),
            "violation_messages": self.violations[:50],
            "hung": bool(hung),
        }


def run(seconds, readers=3, seed=20261201, extension=EXTENSION, workdir=None):
    """Runs the workload on a fresh database in `workdir` (a temporary one by default)."""
    with tempfile.TemporaryDirectory(prefix="hnsw-concurrency-") as tmp:
        path = pathlib.Path(workdir or tmp) / "concurrency.duckdb"
        for suffix in ("", ".wal"):
            pathlib.Path(f"{path}{suffix}").unlink(missing_ok=True)
        return Run(seconds, readers, seed, extension, path).run()


def summary_lines(s):
    return [
        f"{s['seconds']} s of 1 writer + 1 checkpointer + {s['readers']} readers (seed {s['seed']}), "
        f"{s['wall_seconds']} s wall time",
        f"reader transactions: {s['reader_transactions']}, queries checked: {s['queries_checked']}, "
        f"rows checked: {s['rows_checked']}",
        f"writes committed: {s['writes_committed']} transactions ({s['write_statements']} statements), "
        f"write conflicts: {s['write_conflicts']}",
        f"checkpoints: {s['checkpoints']}, refused as conflicts (retried): {s['checkpoint_conflicts']}",
        f"recall@{K} against NumPy over the snapshot (ef_search {EF}): mean {s['mean_recall']}, "
        f"min {s['min_recall']} over {s['recall_queries']} queries",
        f"hnsw_search rows the snapshot cannot see (newer than it): {s['hnsw_search_rows_outside_snapshot']}",
        f"violations: {s['violations']}" + (" (HANG)" if s["hung"] else ""),
        *[f"violation: {m}" for m in s["violation_messages"]],
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--readers", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--extension", type=pathlib.Path, default=EXTENSION)
    ap.add_argument("--workdir", type=pathlib.Path)
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    ap.add_argument("--report", action="store_true", help="also write bench-results/reliability-concurrency.md")
    args = ap.parse_args()
    if not args.extension.exists():
        sys.exit(f"{args.extension} is missing: run `make` first")
    summary = run(args.seconds, args.readers, args.seed, args.extension, args.workdir)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print("\n".join(summary_lines(summary)), flush=True)
    if args.report:
        from scripts.common import command_line, machine, write_report
        from scripts.reliability.kill9 import artifact

        write_report(ROOT / "bench-results" / "reliability-concurrency.md",
                     ["# Readers + writer + checkpoints", "", f"`{command_line()}` on {machine()}, "
                      f"DuckDB {duckdb.__version__}, {time.strftime('%Y-%m-%d')}, {artifact(args.extension)}", "",
                      "```",
                      *summary_lines(summary), "```"], echo=False)
    # A hung thread cannot be joined: leave without running DuckDB's teardown under it.
    sys.stdout.flush()
    os._exit(0 if summary["violations"] == 0 else 1)


if __name__ == "__main__":
    main()
