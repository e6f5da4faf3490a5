"""The SQL test runner itself fails on wrong expectations (so a passing .test file means
something)."""
import pytest

from sqllogictest import Runner, SqlTestFailure, cells_match

CASES = {
    "wrong value": "query I\nSELECT 41 + 1\n----\n43\n",
    "missing row": "query I\nSELECT * FROM range(3)\n----\n0\n1\n",
    "wrong column count": "query II\nSELECT 1\n----\n1\t1\n",
    "unexpected success": "statement error\nSELECT 1\n",
    "wrong error text": "statement error\nSELECT * FROM no_such_table\n----\nsome other message\n",
    "failing statement": "statement ok\nSELECT * FROM no_such_table\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_runner_rejects(tmp_path, extension_path, name):
    path = tmp_path / "case.test"
    path.write_text(CASES[name])
    with pytest.raises(SqlTestFailure):
        Runner(path, extension_path).run()


def test_runner_accepts_correct_file_with_restart_and_loop(tmp_path, extension_path):
    path = tmp_path / "ok.test"
    path.write_text(
        "require hnsw\n\nload __TEST_DIR__/db.duckdb\n\nstatement ok\nCREATE TABLE t(i INTEGER)\n\n"
        "loop i 0 3\n\nstatement ok\nINSERT INTO t VALUES (${i})\n\nendloop\n\nrestart\n\n"
        "query I rowsort\nSELECT i FROM t\n----\n2\n0\n1\n\n"
        "query R\nSELECT 0.1::FLOAT\n----\n0.1\n\n"
        "statement error\nSELECT * FROM nope\n----\nnope\n"
    )
    Runner(path, extension_path).run()


def test_numbers_compare_with_tolerance_and_text_exactly():
    assert cells_match("[0.6000000238418579, 0.800000011920929]", "[0.6, 0.8]")
    assert not cells_match("[0.61, 0.8]", "[0.6, 0.8]")
    assert not cells_match("abc", "abd")
    assert cells_match("NULL", "NULL")
    assert not cells_match("1", "NULL")
    assert cells_match("a Hnsw Index Scan b", "<REGEX>:(?i)hnsw index scan")
    assert not cells_match("Seq Scan", "<REGEX>:(?i)hnsw index scan")
    assert cells_match("Seq Scan", "<!REGEX>:(?i)hnsw index scan")
