"""README's main job: the demo runs end to end (at a small size), uses the index, and its
reported recall against exact search is high."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_demo_uses_the_index_with_high_recall():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--rows", "4000", "--queries", "8"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "EXPLAIN uses the index: True" in out.stdout
    recall = float(re.search(r"recall@10 against exact search over 8 queries: ([0-9.]+)", out.stdout).group(1))
    assert recall >= 0.95, out.stdout
    assert re.search(r"task +42 +search", out.stdout), out.stdout
