"""Transaction correctness of index queries, with several connections to one database.

DuckDB removes deleted rows from indexes when the deleting transaction commits, while
transactions that started earlier may still read those rows. The oracle is the exact plan (the
same query with the extension's optimizer disabled) run in the same transaction; index queries
use an ef that covers the table, so any difference is a visibility error, not recall.
"""
import numpy as np
import pyarrow as pa

DIM = 128
ROWS = 3000
K = 10
SQL = f"SELECT id FROM t ORDER BY array_distance(v, ?::FLOAT[{DIM}]) LIMIT {K}"


def clustered(n, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(16, DIM)).astype(np.float32) * 4
    return (centres[rng.integers(0, 16, size=n)] + rng.normal(size=(n, DIM))).astype(np.float32)


def load(con, table, ids, vectors):
    arrow = pa.table({"id": ids, "v": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM)})
    con.register("arrow_rows", arrow)
    con.execute(f"INSERT INTO {table} SELECT id::INTEGER, v::FLOAT[{DIM}] FROM arrow_rows")
    con.unregister("arrow_rows")


def indexed(con, q):
    """Ids of the index plan's answer (checks that the plan uses the index)."""
    plan = con.execute("EXPLAIN " + SQL, [q.tolist()]).fetchall()[0][1]
    assert "HNSW_INDEX_SCAN" in plan, plan
    return [r[0] for r in con.execute(SQL, [q.tolist()]).fetchall()]


def exact(con, q):
    """Ids of the exact plan's answer, in the connection's current transaction."""
    con.execute("SET disabled_optimizers = 'extension'")
    try:
        return [r[0] for r in con.execute(SQL, [q.tolist()]).fetchall()]
    finally:
        con.execute("RESET disabled_optimizers")


def index_info(con):
    return con.execute("SELECT count, retired FROM pragma_hnsw_index_info()").fetchone()


def agree(con, queries):
    """Index answers equal exact answers for every query; returns the answers."""
    answers = []
    for q in queries:
        got, want = indexed(con, q), exact(con, q)
        assert got == want
        answers.append(got)
    return answers


def test_older_snapshot_keeps_seeing_deleted_and_updated_rows(connect, tmp_path):
    con = connect(tmp_path / "mvcc.duckdb")
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    data = clustered(ROWS + 20, seed=11)
    load(con, "t", np.arange(ROWS), data[:ROWS])
    queries = data[ROWS:]
    con.execute("CREATE INDEX idx ON t USING HNSW (v)")
    reader, writer, late = con.cursor(), con.cursor(), con.cursor()
    for c in (con, reader, writer, late):
        c.execute(f"SET hnsw_ef_search = {ROWS + 1000}")

    before = agree(con, queries)
    deleted = sorted({a[0] for a in before[:10]} | {a[1] for a in before[:10]})
    updated = sorted({a[0] for a in before[10:]} - set(deleted))

    reader.execute("BEGIN TRANSACTION")
    assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == ROWS  # pins the snapshot

    # Committed by other connections after the reader's snapshot: deletes, vector updates
    # (a delete plus an insert in the index), and new rows right next to the queries.
    writer.execute(f"DELETE FROM t WHERE id IN ({','.join(map(str, deleted))})")
    writer.execute(f"UPDATE t SET v = list_transform(range({DIM}), lambda j: 100 + id)::FLOAT[{DIM}] WHERE id IN "
                   f"({','.join(map(str, updated))})")
    load(writer, "t", np.arange(ROWS, ROWS + 20), queries + 0.01)
    count, retired = index_info(writer)
    assert retired == len(deleted) + len(updated)
    assert count == ROWS + 20 - len(deleted)

    # The reader sees the table as of its start: the same answers as before, by index and exactly.
    assert agree(reader, queries) == before

    # Newer snapshots see the deletes, the new vectors and the new rows.
    for c in (writer, late):
        after = agree(c, queries)
        assert not set(deleted) & {i for a in after for i in a}
        assert all(ROWS + i in a for i, a in enumerate(after))

    # Uncommitted inserts are invisible to others; the inserting transaction sees its own.
    writer.execute("BEGIN TRANSACTION")
    load(writer, "t", np.arange(ROWS + 100, ROWS + 120), queries)
    assert all(a[0] == ROWS + 100 + i for i, a in enumerate(agree(writer, queries)))
    assert agree(late, queries) == agree(con, queries)
    assert not {i for a in agree(late, queries) for i in a} & set(range(ROWS + 100, ROWS + 120))
    writer.execute("ROLLBACK")

    # Once the reader ends, the next write purges the retired rows for good.
    assert agree(reader, queries) == before
    reader.execute("COMMIT")
    load(writer, "t", np.array([ROWS + 500]), queries[:1] + 5)
    count, retired = index_info(writer)
    assert retired == 0
    assert count == writer.execute("SELECT count(v) FROM t").fetchone()[0]
    writer.execute("CHECKPOINT")
    reopened_answers = agree(late, queries)
    con.close()

    again = connect(tmp_path / "mvcc.duckdb")
    again.execute(f"SET hnsw_ef_search = {ROWS + 1000}")
    assert agree(again, queries) == reopened_answers
    assert index_info(again) == (again.execute("SELECT count(v) FROM t").fetchone()[0], 0)


def test_rows_deleted_without_older_readers_are_purged_at_once(connect):
    con = connect()
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    load(con, "t", np.arange(500), clustered(500, seed=3))
    con.execute("CREATE INDEX idx ON t USING HNSW (v)")
    con.execute("DELETE FROM t WHERE id < 100")
    # The deleting commit itself cannot purge (its own transaction is still active); the next
    # write can, as no snapshot is left that predates the delete.
    assert index_info(con) == (400, 100)
    con.execute("DELETE FROM t WHERE id = 499")
    assert index_info(con) == (399, 1)
    con.execute("PRAGMA hnsw_compact_index('idx')")
    assert index_info(con) == (399, 0)


def test_a_reverted_insert_does_not_let_an_old_batch_purge_a_later_delete(connect):
    # An INSERT whose second chunk holds a NaN fails after its first chunk reached the index:
    # DuckDB removes that chunk again (a retirement) and reuses its row ids. A later DELETE of one
    # of those rows, seen by a reader that started before it, must survive the purge of the
    # first, stale retirement.
    con = connect()
    con.execute(f"CREATE TABLE t (id INTEGER, v FLOAT[{DIM}])")
    data = clustered(5000, seed=17)
    load(con, "t", np.arange(1000), data[:1000])
    con.execute("CREATE INDEX idx ON t USING HNSW (v)")
    bad = data[1000:4000].copy()
    bad[-1, 0] = np.nan
    try:
        load(con, "t", np.arange(1000, 4000), bad)
        raise AssertionError("the NaN row must fail the INSERT")
    except Exception as error:
        assert "NaN" in str(error), error
    # An old reader keeps the stale retirement pending until after the DELETE below.
    oldest, reader, writer = con.cursor(), con.cursor(), con.cursor()
    oldest.execute("BEGIN TRANSACTION")
    assert oldest.execute("SELECT count(*) FROM t").fetchall()[0][0] == 1000
    load(con, "t", np.arange(1000, 4000), data[1000:4000])  # reuses the reverted row ids
    reader.execute("SET hnsw_ef_search = 6000")
    reader.execute("BEGIN TRANSACTION")
    assert reader.execute("SELECT count(*) FROM t").fetchall()[0][0] == 4000
    q = data[1500]
    before = agree(reader, [q])
    assert 1500 in before[0]
    writer.execute("DELETE FROM t WHERE id = 1500")
    oldest.execute("COMMIT")
    load(writer, "t", np.array([4500]), data[4500:4501])  # a write: purges what it may
    assert agree(reader, [q]) == before
    reader.execute("COMMIT")
