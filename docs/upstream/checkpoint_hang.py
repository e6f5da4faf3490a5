"""FORCE CHECKPOINT deadlocks with a reader that holds an open transaction and starts a second
one, once an UPDATE committed after the reader's transaction began. Plain DuckDB, no extension.

    python checkpoint_hang.py            # prints what each thread is doing, exits 1 on the hang
    python checkpoint_hang.py --hold     # on the hang, keeps the process for `gdb -p PID`
    python checkpoint_hang.py --no-update   # the same without step 2: no hang, exits 0
    python checkpoint_hang.py --read-only   # step 4 as BEGIN TRANSACTION READ ONLY: no hang, exits 0

Steps (each on its own cursor of one connection; separate duckdb.connect() calls to the same
file behave the same, see --connection):
  1. reader: BEGIN TRANSACTION; SELECT count(*) FROM t            (its transaction starts)
  2. writer: UPDATE t SET ver = ver + 1 WHERE id = 1              (autocommit, commits)
  3. checkpointer (thread): FORCE CHECKPOINT                      (waits, see below)
  4. reader (thread), still inside its transaction, runs a statement on a second cursor:
     SELECT count(*) FROM t                                       (never returns)
The reader's transaction never ends, so FORCE CHECKPOINT never gets its lock: both wait forever,
and every new statement on the database from any connection queues behind them.
"""
import os
import sys
import tempfile
import threading
import time

import duckdb

hold = "--hold" in sys.argv
update = "--no-update" not in sys.argv
separate = "--connection" in sys.argv
read_only = "--read-only" in sys.argv

path = os.path.join(tempfile.mkdtemp(), "checkpoint_hang.duckdb")
con = duckdb.connect(path)
con.execute("CREATE TABLE t AS SELECT i AS id, 0 AS ver, [i, i + 1]::FLOAT[2] AS v FROM range(1000) r(i)")
con.execute("CHECKPOINT")
print(f"duckdb {duckdb.__version__}, database {path}, pid {os.getpid()}")


def new_cursor():
    return duckdb.connect(path) if separate else con.cursor()


reader, writer = new_cursor(), new_cursor()
reader.execute("BEGIN TRANSACTION")
print("1. reader: BEGIN; SELECT count(*) ->", reader.execute("SELECT count(*) FROM t").fetchall())
if update:
    writer.execute("UPDATE t SET ver = ver + 1 WHERE id = 1")
    print("2. writer: UPDATE ... committed")

state = {}


def checkpoint():
    try:
        new_cursor().execute("FORCE CHECKPOINT")
        state["checkpoint"] = "done"
    except duckdb.Error as ex:
        state["checkpoint"] = f"{type(ex).__name__}: {ex}"


def second_statement():
    cur = new_cursor()
    if read_only:
        cur.execute("BEGIN TRANSACTION READ ONLY")
    state["second"] = cur.execute("SELECT count(*) FROM t").fetchall()
    if read_only:
        cur.execute("COMMIT")


checkpointer = threading.Thread(target=checkpoint, daemon=True)
checkpointer.start()
time.sleep(0.5)
print("3. FORCE CHECKPOINT after 0.5 s:", state.get("checkpoint", "waiting"))
second = threading.Thread(target=second_statement, daemon=True)
second.start()
second.join(5)
print("4. reader's second statement after 5 s:", state.get("second", "waiting"))
if "second" in state:
    reader.execute("COMMIT")
    checkpointer.join(5)
    print("   reader committed; FORCE CHECKPOINT:", state.get("checkpoint", "waiting"))
    sys.exit(0)
print("HANG: FORCE CHECKPOINT waits for the reader's transaction, the reader waits to start a new one")
if hold:
    print(f"holding; run: gdb -p {os.getpid()} -batch -ex 'thread apply all bt'", flush=True)
    time.sleep(3600)
os._exit(1)
