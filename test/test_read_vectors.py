"""read_npy / read_fvecs / read_bvecs / read_ivecs: embedding files as rows, checked against the
arrays NumPy wrote; globs, order, and errors that name the file, the byte offset and what was
expected."""
import numpy as np
import pytest

import duckdb

DIM = 96


def vectors_of(con, sql):
    """The `vector` column of a query, in row_number order, as one 2-D NumPy array."""
    table = con.sql(f"SELECT vector FROM ({sql}) ORDER BY row_number").to_arrow_table()
    column = table.column("vector").combine_chunks()
    return column.values.to_numpy(zero_copy_only=False).reshape(len(column), -1)


def write_vecs(path, array, dtype):
    """Writes .fvecs/.bvecs/.ivecs: each row prefixed by its int32 dimension."""
    with open(path, "wb") as f:
        for row in array:
            f.write(np.int32(len(row)).tobytes())
            f.write(np.asarray(row, dtype=dtype).tobytes())


@pytest.fixture
def data():
    rng = np.random.default_rng(17)
    return rng.standard_normal((5000, DIM)).astype(np.float32)  # three blocks of 2048 rows


def test_read_npy_float32_equals_numpy(connect, tmp_path, data):
    np.save(tmp_path / "a.npy", data)
    con = connect()
    assert con.execute(f"SELECT typeof(vector), count(*), min(row_number), max(row_number) "
                       f"FROM read_npy('{tmp_path / 'a.npy'}') GROUP BY 1").fetchall() == [
        (f"FLOAT[{DIM}]", 5000, 0, 4999)]
    np.testing.assert_array_equal(vectors_of(con, f"SELECT * FROM read_npy('{tmp_path / 'a.npy'}')"), data)


def test_read_npy_float64_rounds_to_float32(connect, tmp_path, data):
    np.save(tmp_path / "d.npy", data.astype(np.float64) / 3)
    con = connect()
    got = vectors_of(con, f"SELECT * FROM read_npy('{tmp_path / 'd.npy'}')")
    np.testing.assert_array_equal(got, (data.astype(np.float64) / 3).astype(np.float32))


def test_insert_select_keeps_file_order_on_all_threads(connect, tmp_path, data):
    np.save(tmp_path / "a.npy", data)
    con = connect()
    con.execute("SET threads = 2")
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_npy('{tmp_path / 'a.npy'}')")
    # rowid is insertion order: the file's order must survive the parallel read.
    assert con.execute("SELECT count(*) FROM t WHERE rowid <> row_number").fetchone()[0] == 0


def test_index_over_read_npy_finds_exact_neighbours(connect, tmp_path, data):
    np.save(tmp_path / "a.npy", data)
    con = connect()
    con.execute(f"CREATE TABLE t AS SELECT row_number AS id, vector AS v FROM read_npy('{tmp_path / 'a.npy'}')")
    con.execute("CREATE INDEX t_v ON t USING HNSW (v)")
    con.execute("SET hnsw_ef_search = 200")
    query = data[123] + 0.01
    got = [r[0] for r in con.execute(f"SELECT id FROM t ORDER BY array_distance(v, ?::FLOAT[{DIM}]) LIMIT 10",
                                     [query.tolist()]).fetchall()]
    want = np.argsort(((data - query) ** 2).sum(axis=1))[:10]
    assert len(set(got) & set(want.tolist())) >= 9


def test_glob_reads_every_file_with_its_name(connect, tmp_path, data):
    np.save(tmp_path / "part1.npy", data[:3000])
    np.save(tmp_path / "part2.npy", data[3000:])
    con = connect()
    rows = con.execute(f"SELECT filename, count(*), max(row_number) FROM read_npy('{tmp_path}/part*.npy', "
                       f"filename := true) GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [(str(tmp_path / "part1.npy"), 3000, 2999), (str(tmp_path / "part2.npy"), 2000, 1999)]
    got = vectors_of(con, f"SELECT * FROM read_npy('{tmp_path}/part2.npy')")
    np.testing.assert_array_equal(got, data[3000:])


def test_glob_of_different_dimensions_is_an_error(connect, tmp_path, data):
    np.save(tmp_path / "x1.npy", data[:10])
    np.save(tmp_path / "x2.npy", data[:10, :50])
    con = connect()
    with pytest.raises(duckdb.InvalidInputException, match=r"x1\.npy has 96 dimensions, .*x2\.npy has 50"):
        con.execute(f"SELECT count(*) FROM read_npy('{tmp_path}/x*.npy')")


def test_fvecs_bvecs_ivecs_equal_numpy(connect, tmp_path, data):
    write_vecs(tmp_path / "a.fvecs", data[:700], np.float32)
    codes = (np.abs(data[:300]) * 60).astype(np.uint8)
    write_vecs(tmp_path / "a.bvecs", codes, np.uint8)
    ids = np.arange(300 * 10, dtype=np.int32).reshape(300, 10)[:, ::-1].copy()
    write_vecs(tmp_path / "a.ivecs", ids, np.int32)
    con = connect()
    np.testing.assert_array_equal(vectors_of(con, f"SELECT * FROM read_fvecs('{tmp_path / 'a.fvecs'}')"), data[:700])
    np.testing.assert_array_equal(vectors_of(con, f"SELECT * FROM read_bvecs('{tmp_path / 'a.bvecs'}')"),
                                  codes.astype(np.float32))
    assert con.execute(f"SELECT DISTINCT typeof(vector) FROM read_ivecs('{tmp_path / 'a.ivecs'}')").fetchall() == [
        ("INTEGER[10]",)]
    np.testing.assert_array_equal(vectors_of(con, f"SELECT * FROM read_ivecs('{tmp_path / 'a.ivecs'}')"), ids)


def test_damaged_files_name_the_file_offset_and_expectation(connect, tmp_path, data):
    con = connect()
    np.save(tmp_path / "cut.npy", data[:100])
    raw = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:-10])
    np.save(tmp_path / "ints.npy", np.arange(20).reshape(4, 5))
    np.save(tmp_path / "fortran.npy", np.asfortranarray(data[:10]))
    np.save(tmp_path / "flat.npy", data[0])
    write_vecs(tmp_path / "cut.fvecs", data[:10], np.float32)
    (tmp_path / "cut.fvecs").write_bytes((tmp_path / "cut.fvecs").read_bytes()[:-1])
    with open(tmp_path / "mixed.fvecs", "wb") as f:  # same size as 3 x 96, middle record 95 + 97
        for row in (data[0], data[1][:95], np.append(data[2], np.float32(1))):
            f.write(np.int32(len(row)).tobytes())
            f.write(row.tobytes())
    cases = [
        ("read_npy", "cut.npy", r"truncated: the header promises 100 x 96 values"),
        ("read_npy", "ints.npy", r"expected dtype float32 \('<f4'\) or float64 \('<f8'\), got '<i8'"),
        ("read_npy", "fortran.npy", r"expected a C-order array"),
        ("read_npy", "flat.npy", r"expected a 2-D array \(rows, dimensions\), got shape \(96,\)"),
        ("read_fvecs", "cut.fvecs", r"records of dimension 96 take 388 bytes"),
        ("read_fvecs", "mixed.fvecs", r"record 1 has dimension 95, expected 96"),
        ("read_npy", "cut.fvecs", r"expected the \.npy magic"),
    ]
    for function, name, expected in cases:
        path = tmp_path / name
        with pytest.raises(duckdb.InvalidInputException, match=rf"{function}.*{path}: at byte offset \d+: "
                                                               rf".*{expected}"):
            con.execute(f"SELECT count(*), sum(vector[1]) FROM {function}('{path}')").fetchall()
    with pytest.raises(duckdb.IOException, match="No files found"):
        con.execute(f"SELECT * FROM read_npy('{tmp_path}/missing*.npy')")
    with pytest.raises(duckdb.InvalidInputException, match="the path is NULL"):
        con.execute("SELECT * FROM read_npy(NULL)")
