"""A database file written by one supported DuckDB version, opened by another: each 2.0.x file in
the other 2.0.x, and each 1.5.x file in each 2.0.x (DuckDB upgrades its storage). The reader
must use the stored index and answer as exact search does (plain-Python oracle). Run by
`make test-versions` once every version's venv and artifact exist:
    python test/versions/cross_version_check.py 2.0.1 2.0.0 1.5.6 1.5.5
"""
import json
import pathlib
import random
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
DIM, ROWS = 16, 500

WORKER = """
import duckdb, json, sys
mode, path, ext = sys.argv[1:4]
con = duckdb.connect(path, config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{ext}'")
if mode == "write":
    rows = json.loads(sys.stdin.read())
    con.execute("CREATE TABLE items (id INTEGER, v FLOAT[%d])")
    con.executemany("INSERT INTO items VALUES (?, ?)", rows)
    con.execute("CREATE INDEX items_v ON items USING HNSW (v)")
    con.execute("DELETE FROM items WHERE id %% 10 = 3")
    con.execute("CHECKPOINT")
else:
    out = []
    for q in json.loads(sys.stdin.read()):
        sql = "SELECT id FROM items ORDER BY array_distance(v, ?::FLOAT[%d]) LIMIT 5"
        plan = "".join(r[1] for r in con.execute("EXPLAIN " + sql, [q]).fetchall())
        out.append(["HNSW_INDEX_SCAN" in plan, [r[0] for r in con.execute(sql, [q]).fetchall()]])
    reason = con.execute("SELECT unusable_reason FROM pragma_hnsw_index_info()").fetchone()[0]
    print(json.dumps({"answers": out, "unusable": reason, "version": duckdb.__version__}))
""" % (DIM, DIM)


def run(version, mode, path, payload):
    python = ROOT / f".venv-v{version}" / "bin" / "python"
    ext = ROOT / "build" / "release" / f"v{version}" / "hnsw.duckdb_extension"
    out = subprocess.run([str(python), "-c", WORKER, mode, str(path), str(ext)], input=json.dumps(payload),
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"DuckDB {version} {mode} failed:\n{out.stderr}")
    return out.stdout


def main(versions):
    rng = random.Random(11)
    rows = [(i, [rng.gauss(0, 1) for _ in range(DIM)]) for i in range(ROWS)]
    kept = [r for r in rows if r[0] % 10 != 3]
    queries = [[x + rng.gauss(0, 0.05) for x in rows[i][1]] for i in range(0, ROWS, 50)]
    exact = [[i for _, i in sorted((sum((a - b) ** 2 for a, b in zip(v, q)), i) for i, v in kept)[:5]]
             for q in queries]
    newer = [v for v in versions if v.startswith("2.")]
    pairs = [(a, b) for a in versions for b in newer if a != b]
    failures = 0
    for writer, reader in pairs:
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "x.duckdb"
            run(writer, "write", path, rows)
            result = json.loads(run(reader, "read", path, queries))
            used = all(a[0] for a in result["answers"])
            hits = sum(len(set(a[1]) & set(e)) for a, e in zip(result["answers"], exact))
            recall = hits / (5 * len(exact))
            ok = used and result["unusable"] is None and recall >= 0.95
            failures += not ok
            print(f"written by {writer}, read by {reader}: index {'used' if used else 'NOT used'}, "
                  f"recall@5 {recall:.2f}, unusable_reason {result['unusable']} -> {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
