"""CREATE INDEX ... USING HNSW drives DuckDB's progress bar: the graph is built while the table is
scanned, so the bar moves through intermediate values instead of sitting at 0% or 100%."""
import re
import subprocess
import sys

SCRIPT = """
import duckdb
con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})
con.execute("LOAD '%s'")
con.execute("CREATE TABLE t AS SELECT list_transform(range(16), lambda j: (hash(i * 31 + j) %% 1000) / 1000.0)::FLOAT[16] AS v FROM range(250000) r(i)")
con.execute("SET enable_progress_bar = true")
con.execute("SET enable_progress_bar_print = true")
con.execute("SET progress_bar_time = 0")
print("CREATE INDEX starts", flush=True)
con.execute("CREATE INDEX idx ON t USING HNSW (v)")
"""


def test_progress_bar_advances_during_the_build(extension_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT % extension_path], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    text = (out.stdout + out.stderr).replace("\r", "\n")
    during = text.split("CREATE INDEX starts", 1)[1]
    percents = {int(p) for p in re.findall(r"(\d+)%", during)}
    assert any(0 < p < 100 for p in percents), sorted(percents)
