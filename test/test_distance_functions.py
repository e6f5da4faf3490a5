"""The SQL distance functions against NumPy (float64) on realistic dimensions."""
import numpy as np
import pytest


@pytest.mark.parametrize("dim", [128, 384, 1000])
def test_distances_match_numpy(connect, dim):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(300, dim)).astype(np.float32)
    b = rng.normal(size=(300, dim)).astype(np.float32)
    con = connect()
    con.execute(f"CREATE TABLE t(i INTEGER, a FLOAT[{dim}], b FLOAT[{dim}])")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, a[i].tolist(), b[i].tolist()) for i in range(300)])
    rows = con.execute(
        "SELECT i, array_l2sq_distance(a, b), array_l1_distance(a, b), array_normalize(a) FROM t ORDER BY i"
    ).fetchall()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    l2 = ((a64 - b64) ** 2).sum(axis=1)
    l1 = np.abs(a64 - b64).sum(axis=1)
    unit = a64 / np.linalg.norm(a64, axis=1, keepdims=True)
    got_l2 = np.array([r[1] for r in rows])
    got_l1 = np.array([r[2] for r in rows])
    got_unit = np.array([r[3] for r in rows])
    np.testing.assert_allclose(got_l2, l2, rtol=1e-5)
    np.testing.assert_allclose(got_l1, l1, rtol=1e-5)
    np.testing.assert_allclose(got_unit, unit, rtol=1e-5, atol=1e-7)


def test_constant_and_column_arguments_mix(connect):
    con = connect()
    con.execute("CREATE TABLE t AS SELECT [i, i + 1, i + 2]::FLOAT[3] AS v FROM range(5000) r(i)")
    got = con.execute("SELECT sum(array_l2sq_distance(v, [0, 0, 0]::FLOAT[3]))::DOUBLE FROM t").fetchone()[0]
    i = np.arange(5000, dtype=np.float64)
    want = (i**2 + (i + 1) ** 2 + (i + 2) ** 2).sum()
    assert got == pytest.approx(want, rel=1e-6)
