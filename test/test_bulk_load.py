"""scripts/load/bulk_load.py: .npy, Parquet and CSV embeddings land in a FLOAT[n] column exactly, an
indexed table keeps its index in step, and files of the wrong shape are refused before any row
is inserted."""
import pathlib
import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parent.parent
DIM = 384


def run(db, table, path, extension):
    return subprocess.run([sys.executable, "-m", "scripts.load.bulk_load", str(db), table, str(path),
                           "--extension", str(extension)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def stored(db, extension, table):
    con = duckdb.connect(str(db), config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")
    rows = con.execute(f"SELECT id, embedding FROM {table} ORDER BY id").fetchall()
    info = con.execute("SELECT table_name, count FROM pragma_hnsw_index_info()").fetchall()
    con.close()
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=np.float32), info


def test_npy_parquet_and_csv_load_exactly_and_keep_the_index_in_step(tmp_path, extension_path):
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(3000, DIM)).astype(np.float32)
    np.save(tmp_path / "a.npy", vectors[:1000])
    arrow = pa.table({"id": np.arange(1000, 2000),
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors[1000:2000].ravel()), DIM)})
    pq.write_table(arrow, tmp_path / "b.parquet")
    con = duckdb.connect()
    con.register("rows", pa.table({"id": np.arange(2000, 3000), "embedding": pa.FixedSizeListArray.from_arrays(
        pa.array(vectors[2000:].ravel()), DIM)}))
    con.execute(f"COPY (SELECT id, embedding::FLOAT[{DIM}]::VARCHAR AS embedding FROM rows) "
                f"TO '{tmp_path / 'c.csv'}' (HEADER)")
    con.close()

    db = tmp_path / "load.duckdb"
    out = run(db, "items", tmp_path / "a.npy", extension_path)
    assert out.returncode == 0, out.stderr
    assert "loaded 1000 rows" in out.stdout
    setup = duckdb.connect(str(db), config={"allow_unsigned_extensions": "true"})
    setup.execute(f"LOAD '{extension_path}'")
    setup.execute("CREATE INDEX items_hnsw ON items USING HNSW (embedding)")
    setup.close()
    for name in ("b.parquet", "c.csv"):
        out = run(db, "items", tmp_path / name, extension_path)
        assert out.returncode == 0, out.stderr

    ids, got, info = stored(db, extension_path, "items")
    assert ids.tolist() == list(range(3000))
    # CSV text round-trips float32 exactly (shortest representation); the others are binary.
    assert np.array_equal(got, vectors)
    assert info == [("items", 3000)]


def test_wrong_dimensions_are_refused_with_both_numbers(tmp_path, extension_path):
    db = tmp_path / "load.duckdb"
    np.save(tmp_path / "ok.npy", np.ones((10, DIM), dtype=np.float32))
    assert run(db, "items", tmp_path / "ok.npy", extension_path).returncode == 0
    np.save(tmp_path / "small.npy", np.ones((10, 3), dtype=np.float32))
    out = run(db, "items", tmp_path / "small.npy", extension_path)
    assert out.returncode != 0 and "expected 384 dimensions" in out.stderr and "not 3" in out.stderr, out.stderr
    ragged = pa.table({"id": [1, 2], "embedding": [[1.0] * DIM, [1.0] * 5]})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    out = run(db, "items", tmp_path / "ragged.parquet", extension_path)
    assert out.returncode != 0 and "expected 384 dimensions in column embedding, not 5" in out.stderr, out.stderr
    out = run(db, "items", tmp_path / "missing.parquet", extension_path)
    assert out.returncode != 0 and "does not exist" in out.stderr
    ids, _, _ = stored(db, extension_path, "items")
    assert len(ids) == 10  # nothing from the refused files
