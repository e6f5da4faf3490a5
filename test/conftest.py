"""Pytest setup: the built extension, DuckDB connections that load it, and collection of
test/sql/*.test files (run by sqllogictest.py) so one pytest summary covers everything.

HNSW_DEV=1 tests the fast dev build (DuckDB symbols resolved from the host, which needs
RTLD_GLOBAL); by default the release artifact users get is tested. HNSW_EXTENSION overrides.
"""
import os
import pathlib
import sys

DEV = os.environ.get("HNSW_DEV") == "1"
if DEV:
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_GLOBAL)

import duckdb  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from sqllogictest import Runner, SqlTestFailure  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXTENSION = pathlib.Path(
    os.environ.get("HNSW_EXTENSION") or ROOT / "build" / ("dev" if DEV else "release") / "hnsw.duckdb_extension"
)


def pytest_sessionstart(session):
    if not EXTENSION.exists():
        raise pytest.UsageError(f"{EXTENSION} is missing: run `make` first")


@pytest.fixture(scope="session")
def extension_path():
    return EXTENSION


@pytest.fixture
def connect():
    """Opens a DuckDB connection (a file path or in-memory) with the extension loaded."""
    opened = []

    def open_connection(path=":memory:"):
        con = duckdb.connect(str(path), config={"allow_unsigned_extensions": "true"})
        con.execute(f"LOAD '{EXTENSION}'")
        opened.append(con)
        return con

    yield open_connection
    for con in opened:
        con.close()


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".test" and file_path.parent.name == "sql":
        return SqlTestFile.from_parent(parent, path=file_path)


class SqlTestFile(pytest.File):
    def collect(self):
        yield SqlTestItem.from_parent(self, name=self.path.stem)


class SqlTestItem(pytest.Item):
    def runtest(self):
        Runner(self.path, EXTENSION).run()

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, SqlTestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"sql: {self.name}"
