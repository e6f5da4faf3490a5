"""Readers + a writer + checkpoints concurrently for 8 s (the short run of `make reliability`,
scripts/reliability/concurrency.py, same code): every row an index query returns (ORDER BY
distance LIMIT k, the same filtered, hnsw_search) is in the reader's snapshot with the same ver and
vector and the distance NumPy computes over the snapshot, answers hold min(k, matching rows) rows,
mean recall@10 against exact search over the snapshot is at least 0.9, and nothing but DuckDB's
documented conflicts is raised. It runs in a subprocess: a hang (the script's own watchdog gives
threads 60 s after the end) fails the test instead of stalling pytest."""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECONDS = 8


def test_readers_see_their_snapshot_under_writes_and_checkpoints(extension_path, tmp_path):
    try:
        out = subprocess.run([sys.executable, "-m", "scripts.reliability.concurrency", "--seconds", str(SECONDS),
                              "--extension", str(extension_path), "--workdir", str(tmp_path), "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 120)
    except subprocess.TimeoutExpired as ex:
        raise AssertionError(f"the run did not end (hang): {ex.stderr}") from None
    lines = out.stdout.strip().splitlines()
    assert lines, f"no summary (exit {out.returncode}): {out.stderr[-3000:]}"
    summary = json.loads(lines[-1])
    assert summary["violations"] == 0, json.dumps(summary, indent=1) + out.stderr[-3000:]
    assert not summary["hung"]
    assert out.returncode == 0, out.stderr[-3000:]
    # Every part ran: reads, writes and checkpoints overlapped.
    assert summary["reader_transactions"] >= 20, summary
    assert summary["queries_checked"] >= 200 and summary["rows_checked"] >= 1000, summary
    assert summary["writes_committed"] >= 20, summary
    assert summary["checkpoints"] >= 2, summary
    assert summary["mean_recall"] >= 0.9, summary
