"""README's main job: the demo runs end to end (at a small size), builds the learning database,
uses the index, reports high recall against exact search, a second run reuses the file, and a
run on a file whose stored index cannot be read rebuilds the index."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_demo(db):
    out = subprocess.run([sys.executable, "-m", "scripts.demo.learning", "--db", str(db), "--rows", "4000",
                          "--queries", "8"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def check_answers(stdout):
    assert re.search(r"most similar to task 42 \(.*plan: .*HNSW_INDEX_SCAN", stdout), stdout
    # The nearest execution to task 42 is itself; its neighbours share its type ("search").
    block = stdout.split("most similar to task 42", 1)[1].splitlines()[1:7]
    assert re.match(r"\s*task +42 +search +0\.0000", block[0]), block
    assert all(" search " in line for line in block), block
    recall = float(re.search(r"recall@10 against exact search over 8 queries: ([0-9.]+)", stdout).group(1))
    assert recall >= 0.95, stdout


def test_demo_builds_the_learning_database_then_reuses_it(tmp_path):
    db = tmp_path / "learning.duckdb"
    first = run_demo(db)
    assert "CREATE INDEX executions_hnsw" in first and "index built in" in first
    check_answers(first)
    second = run_demo(db)
    assert "reusing" in second and "index built in" not in second
    check_answers(second)
    # A stored index this build cannot read (here: its magic number damaged, as a file from an
    # older format would be) is rebuilt, the table kept.
    raw = bytearray(db.read_bytes())
    start = raw.find(b"DKHNSWP\x1a")
    assert start > 0
    raw[start] ^= 0x01
    db.write_bytes(raw)
    third = run_demo(db)
    assert "the stored index cannot be read" in third and "index built in" in third, third
    assert "created executions" not in third
    check_answers(third)
