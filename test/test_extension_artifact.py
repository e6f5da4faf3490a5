"""The shipped artifact: loads in a default-flags Python, exports only its entry point and
carries DuckDB's metadata footer."""
import pathlib
import re
import subprocess
import sys

import duckdb

ROOT = pathlib.Path(__file__).resolve().parent.parent
RELEASE = ROOT / "build" / "release" / "hnsw.duckdb_extension"
CARGO_VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
DUCKDB_VERSION = (ROOT / "DUCKDB_VERSION").read_text().strip()


def test_loads_in_a_plain_python_process():
    # A fresh interpreter with default dlopen flags, as a user's script or the CLI would be.
    code = f"""
import duckdb
con = duckdb.connect(config={{'allow_unsigned_extensions': 'true'}})
con.execute("LOAD '{RELEASE}'")
print(con.execute("SELECT loaded, extension_version FROM duckdb_extensions() WHERE extension_name = 'hnsw'").fetchall())
print(con.execute("SELECT array_l2sq_distance([0, 3]::FLOAT[2], [4, 0]::FLOAT[2])").fetchone()[0])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == f"[(True, '{CARGO_VERSION}')]"
    assert float(lines[1]) == 25.0


def test_unsigned_load_is_refused_without_the_setting():
    con = duckdb.connect()
    try:
        con.execute(f"LOAD '{RELEASE}'")
        raise AssertionError("unsigned extension loaded without allow_unsigned_extensions")
    except duckdb.Error as e:
        assert "signature" in str(e).lower() or "unsigned" in str(e).lower()


def test_exports_only_the_entry_point():
    out = subprocess.run(["nm", "-D", "--defined-only", str(RELEASE)], capture_output=True, text=True, check=True)
    symbols = [line.split()[-1] for line in out.stdout.splitlines() if line.strip()]
    assert symbols == ["hnsw_duckdb_cpp_init"], symbols


def test_has_no_undefined_duckdb_symbols():
    out = subprocess.run(["nm", "-D", "--undefined-only", str(RELEASE)], capture_output=True, text=True, check=True)
    duckdb_refs = [line for line in out.stdout.splitlines() if "duckdb" in line]
    assert duckdb_refs == []


def test_metadata_footer_fields():
    footer = RELEASE.read_bytes()[-512:]
    fields = [footer[i * 32 : (i + 1) * 32].rstrip(b"\0").decode() for i in range(8)]
    assert fields == ["", "", "", "CPP", CARGO_VERSION, f"v{DUCKDB_VERSION}", "linux_amd64", "4"]
    assert footer[256:] == b"\0" * 256
