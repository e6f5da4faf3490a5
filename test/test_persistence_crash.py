"""Crash safety, the quick subset of `make reliability` (scripts/reliability/kill9.py, same code):
a writer is SIGKILLed at 42 seeded points (inside inserts, deletes, updates, CHECKPOINT, CREATE /
DROP INDEX and PRAGMA hnsw_compact_index); after every restart the table holds exactly the
committed rows (checked against an in-memory DuckDB that replays the committed statements) and the
index agrees with the table and with exact search (see kill9.check_index)."""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.reliability import kill9  # noqa: E402

ROUNDS = 42  # each kind 6 times, twice per delay class (at once, within 5 ms, within 50 ms)
SEED = 20261122


def test_committed_writes_survive_sigkill(tmp_path, extension_path):
    summary = kill9.run(ROUNDS, SEED, extension_path, tmp_path)
    report = "\n".join(kill9.summary_lines(summary))
    assert summary["kills"] == ROUNDS, report
    assert summary["failures"] == 0, report
    assert summary["rows_lost"] == 0 and summary["rows_extra"] == 0, report
    assert summary["vectors_damaged"] == 0, report
    assert summary["disagreement_total"] == 0, report
    assert not summary["problems"], report
    assert summary["stats"]["index_checks"] > ROUNDS // 2, report
    # Kills landed while each kind of write was running (not only between statements).
    for kind in ("INSERT", "DELETE", "UPDATE", "CHECKPOINT", "CREATE INDEX", "COMPACT"):
        assert summary["killed_in"].get(kind, 0) > 0, f"no kill inside {kind}\n{report}"
