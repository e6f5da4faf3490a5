"""Stored index data this extension cannot use: a file whose HNSW index vss 1.5.5 wrote, and an
index whose bytes were damaged on disk. Neither may crash, hang or give wrong rows: queries that
would use the index fail with an error that says how to rebuild it, writes keep working, and the
rebuilt index answers as exact search does. Each case runs in a subprocess with a timeout, so a
crash or a hang fails the test instead of killing the run."""
import json
import pathlib
import shutil
import subprocess
import sys
import textwrap

import duckdb

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "vss_1_5_5.duckdb"
QUERY = "SELECT id FROM items ORDER BY array_distance(v, (SELECT v FROM items WHERE id = {q})) LIMIT 5"
# Script lines (at the scripts' indentation) that run QUERY and print whether it was answered.
TRY_QUERY = f"""        try:
            con.execute({QUERY.format(q=3)!r}).fetchall()
            print("QUERY-OK")
        except duckdb.Error as e:
            print("QUERY-ERROR", e)
"""
EXACT = "SELECT id FROM items ORDER BY array_distance(v, (SELECT v FROM items WHERE id = {q})) + 0, id LIMIT 5"


def run_script(body, extension, database, timeout=120):
    script = textwrap.dedent(
        f"""
        import duckdb
        con = duckdb.connect({str(database)!r}, config={{"allow_unsigned_extensions": "true"}})
        con.execute("LOAD '{extension}'")
        """
    ) + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_vss_written_index_is_reported_and_rebuildable(tmp_path, extension_path):
    database = tmp_path / "vss.duckdb"
    shutil.copy(FIXTURE, database)
    out = run_script(
        f"""
{TRY_QUERY}        print("REASON", con.execute("SELECT unusable_reason FROM pragma_hnsw_index_info()").fetchall())
        con.execute("INSERT INTO items SELECT 1000 + id, v FROM items WHERE id < 3")
        print("ROWS", con.execute("SELECT count(*) FROM items").fetchone()[0])
        con.execute("CHECKPOINT")
        """,
        extension_path,
        database,
    )
    assert "QUERY-ERROR" in out and "vss" in out and "DROP INDEX items_v" in out, out
    assert "REASON [('it was stored by another extension (vss?)" in out, out
    assert "ROWS 503" in out
    # After a reopen the index is still refused (never silently used), and rebuilding works.
    out = run_script(
        f"""
{TRY_QUERY}        con.execute("DROP INDEX items_v")
        con.execute("CREATE INDEX items_v ON items USING HNSW (v)")
        print("REASON", con.execute("SELECT unusable_reason FROM pragma_hnsw_index_info()").fetchall())
        con.execute("SET hnsw_ef_search = 600")
        for q in (3, 77, 499):
            got = con.execute({QUERY!r}.format(q=q)).fetchall()
            want = con.execute({EXACT!r}.format(q=q)).fetchall()
            print("SAME" if sorted(got) == sorted(want) else f"DIFF {{got}} {{want}}")
        """,
        extension_path,
        database,
    )
    assert "QUERY-ERROR" in out and out.count("SAME") == 3, out
    assert "REASON [(None,)]" in out, out


def index_file(tmp_path, extension):
    database = tmp_path / "damaged.duckdb"
    run_script(
        """
        con.execute("CREATE TABLE items AS SELECT i AS id, list_transform(range(64), lambda j: "
                    "((hash(i * 64 + j) % 2000) / 1000.0 - 1))::FLOAT[64] AS v FROM range(3000) r(i)")
        con.execute("CREATE INDEX items_v ON items USING HNSW (v)")
        con.execute("CHECKPOINT")
        """,
        extension,
        database,
    )
    return database


def test_damaged_index_bytes_never_give_wrong_rows(tmp_path, extension_path):
    clean = index_file(tmp_path, extension_path)
    data = clean.read_bytes()
    # The image's first page starts with its magic number; its pages follow in the index blocks.
    start = data.find(b"DKHNSWP\x1a")
    assert start > 0
    with duckdb.connect(str(clean), read_only=True) as con:
        truth = {q: con.execute(EXACT.format(q=q)).fetchall() for q in (5, 1500)}
    outcomes = []
    offsets = [o for o in (8, 120, 5000, 70_000, 200_000, 400_000) if start + o < len(data)]
    assert len(offsets) >= 4, (start, len(data))
    for offset in offsets:
        damaged = tmp_path / f"damaged-{offset}.duckdb"
        raw = bytearray(data)
        raw[start + offset] ^= 0x5A
        damaged.write_bytes(raw)
        out = run_script(
            """
            import json
            result = {}
            con.execute("SET hnsw_ef_search = 3000")
            for q in (5, 1500):
                try:
                    result[q] = con.execute(%r.format(q=q)).fetchall()
                except duckdb.Error as e:
                    result[q] = str(e)
            print(json.dumps(result))
            """
            % QUERY,
            extension_path,
            damaged,
        )
        result = json.loads(out.strip().splitlines()[-1])
        for q, want in truth.items():
            got = result[str(q)]
            if isinstance(got, str):
                outcomes.append("error")
                assert "DROP INDEX" in got or "checksum" in got.lower() or "corrupt" in got.lower(), got
            else:
                outcomes.append("rows")
                assert [tuple(r) for r in got] == want, f"offset {offset}: wrong rows {got} != {want}"
    # A flip inside the image's checked bytes is reported, not silently accepted.
    assert "error" in outcomes, outcomes


def test_damaged_index_then_writes_and_checkpoints_keep_the_database_usable(tmp_path, extension_path):
    # Before, the first CHECKPOINT after a write read the damaged blocks again to free them and
    # failed FATAL, invalidating the database in every later session until DROP INDEX.
    clean = index_file(tmp_path, extension_path)
    data = clean.read_bytes()
    start = data.find(b"DKHNSWP\x1a")
    for offset in [o for o in (8, 5000, 70_000) if start + o < len(data)]:
        damaged = tmp_path / f"written-{offset}.duckdb"
        raw = bytearray(data)
        raw[start + offset] ^= 0x5A
        damaged.write_bytes(raw)
        out = run_script(
            TRY_QUERY
            + """
        con.execute("INSERT INTO items SELECT 9000, v FROM items WHERE id = 1")
        con.execute("DELETE FROM items WHERE id = 7")
        con.execute("CHECKPOINT")
        print("CHECKPOINT-OK")
        """,
            extension_path,
            damaged,
        )
        assert "QUERY-ERROR" in out and "DROP INDEX" in out and "CHECKPOINT-OK" in out, out
        out = run_script(
            """
        print("ROWS", con.execute("SELECT count(*), count(*) FILTER (id = 9000), count(*) FILTER (id = 7) "
                                  "FROM items").fetchall())
"""
            + TRY_QUERY
            + """
        con.execute("INSERT INTO items SELECT 9001, v FROM items WHERE id = 2")
        con.execute("CHECKPOINT")
        con.execute("DROP INDEX items_v")
        con.execute("CREATE INDEX items_v ON items USING HNSW (v)")
        con.execute("SET hnsw_ef_search = 3000")
        got = con.execute(%r).fetchall()
        want = con.execute(%r).fetchall()
        print("REBUILT", got == want)
        con.execute("CHECKPOINT")
        """
            % (QUERY.format(q=5), EXACT.format(q=5)),
            extension_path,
            damaged,
        )
        assert "ROWS [(3000, 1, 0)]" in out and "QUERY-ERROR" in out and "REBUILT True" in out, out
