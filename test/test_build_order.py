"""CREATE INDEX on a table filled one tight cluster after another (as an INSERT ... SELECT per task
type fills it): recall@10 against exact search stays high at the default ef. Before the build
linked a sample of the whole table first, early clusters were linked only among themselves and
recall@10 stalled near 0.86 whatever the ef. Oracle: NumPy brute force."""
import numpy as np
import pyarrow as pa

DIM = 128


def test_clusters_stored_in_order_keep_recall(connect):
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(60, DIM))
    data = (np.repeat(centres, 150, axis=0) + 0.02 * rng.normal(size=(9_000, DIM))).astype(np.float32)
    queries = (data[rng.choice(len(data), 100, replace=False)] + 0.05 * rng.normal(size=(100, DIM))).astype(np.float32)
    con = connect()
    con.register("b", pa.table({"id": np.arange(len(data)),
                                "v": pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), DIM)}))
    con.execute(f"CREATE TABLE t AS SELECT id::INTEGER AS id, v::FLOAT[{DIM}] AS v FROM b ORDER BY id")
    con.execute("CREATE INDEX t_v ON t USING HNSW (v) WITH (metric = 'cosine')")
    sql = f"SELECT id FROM t ORDER BY array_cosine_distance(v, ?::FLOAT[{DIM}]) LIMIT 10"
    assert "HNSW_INDEX_SCAN" in con.execute("EXPLAIN " + sql, [queries[0].tolist()]).fetchall()[0][1]
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    hits = 0
    for q in queries:
        truth = set(np.argsort(-(unit @ (q / np.linalg.norm(q))))[:10])
        hits += len(truth & {r[0] for r in con.execute(sql, [q.tolist()]).fetchall()})
    assert hits / 1000 >= 0.95, hits / 1000
