//! Vector files: values read back equal what was written, in blocks from any row; every damaged
//! or foreign file is an error naming the file, the byte offset and what was expected.

use hnsw::{Error, VectorFile, VectorFileKind};
use std::io::Write;
use std::path::PathBuf;

/// A temporary file with `bytes`, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let dir = std::env::temp_dir().join(format!("hnsw-vector-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A .npy file as NumPy writes it: version 1, header padded with spaces to a multiple of 64.
fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

/// Deterministic values that are not round numbers.
fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.5)
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn vecs<T: Copy>(rows: &[Vec<T>], encode: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        out.extend_from_slice(&(row.len() as i32).to_le_bytes());
        for &x in row {
            out.extend(encode(x));
        }
    }
    out
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn npy_float32_reads_back_in_blocks() {
    let (rows, dims) = (1001, 24);
    let data = values(rows * dims);
    let file = TempFile::new("a.npy", &npy("<f4", false, "(1001, 24)", &f32_bytes(&data)));
    let f = VectorFile::open(file.path()).unwrap();
    assert_eq!(
        (f.rows(), f.dims(), f.kind()),
        (1001, 24, VectorFileKind::Npy)
    );
    let mut got = vec![0f32; rows * dims];
    let mut start = 0;
    while start < rows {
        let n = f
            .read_f32(
                start as u64,
                &mut got[start * dims..(start + 100).min(rows) * dims],
            )
            .unwrap();
        assert_eq!(n, 100.min(rows - start));
        start += n;
    }
    assert_eq!(got, data);
    // Past the end: nothing.
    assert_eq!(f.read_f32(rows as u64, &mut [0f32; 24]).unwrap(), 0);
}

#[test]
fn npy_float64_is_rounded_to_float32() {
    let data: Vec<f64> = (0..30).map(|i| i as f64 / 3.0).collect();
    let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    let file = TempFile::new("b.npy", &npy("<f8", false, "(10, 3)", &bytes));
    let f = VectorFile::open(file.path()).unwrap();
    let mut got = vec![0f32; 30];
    assert_eq!(f.read_f32(0, &mut got).unwrap(), 10);
    let want: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    assert_eq!(got, want);
}

#[test]
fn npy_errors_name_file_offset_and_expectation() {
    let data = f32_bytes(&values(40));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "int.npy",
            npy("<i8", false, "(5, 1)", &data),
            "expected dtype float32 ('<f4') or float64 ('<f8'), got '<i8'",
        ),
        ("big.npy", npy(">f4", false, "(10, 4)", &data), "got '>f4'"),
        (
            "fortran.npy",
            npy("<f4", true, "(10, 4)", &data),
            "expected a C-order array",
        ),
        (
            "flat.npy",
            npy("<f4", false, "(40,)", &data),
            "expected a 2-D array (rows, dimensions), got shape (40,)",
        ),
        (
            "short.npy",
            npy("<f4", false, "(11, 4)", &data),
            "truncated: the header promises 11 x 4 values",
        ),
        (
            "long.npy",
            npy("<f4", false, "(9, 4)", &data),
            "trailing bytes",
        ),
        (
            "magic.npy",
            b"PK\x03\x04 not numpy at all".to_vec(),
            "expected the .npy magic",
        ),
        (
            "tiny.npy",
            b"\x93NUM".to_vec(),
            "truncated: expected 10 bytes from here, the file ends after 4",
        ),
    ];
    for (name, bytes, expected) in cases {
        let file = TempFile::new(name, &bytes);
        let err = message(VectorFile::open(file.path()).unwrap_err());
        assert!(err.starts_with(file.path()), "{name}: {err}");
        assert!(err.contains("at byte offset"), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
}

#[test]
fn fvecs_bvecs_ivecs_read_back() {
    let rows: Vec<Vec<f32>> = (0..50)
        .map(|r| values(16).iter().map(|x| x + r as f32).collect())
        .collect();
    let file = TempFile::new("a.fvecs", &vecs(&rows, |x: f32| x.to_le_bytes().to_vec()));
    let f = VectorFile::open(file.path()).unwrap();
    assert_eq!((f.rows(), f.dims(), f.is_integer()), (50, 16, false));
    let mut got = vec![0f32; 20 * 16];
    assert_eq!(f.read_f32(30, &mut got).unwrap(), 20);
    assert_eq!(got, rows[30..].concat());

    let brows: Vec<Vec<u8>> = (0..7)
        .map(|r| (0..9).map(|c| (r * 31 + c * 17) as u8).collect())
        .collect();
    let file = TempFile::new("a.bvecs", &vecs(&brows, |x: u8| vec![x]));
    let f = VectorFile::open(file.path()).unwrap();
    let mut got = vec![0f32; 7 * 9];
    assert_eq!(f.read_f32(0, &mut got).unwrap(), 7);
    let want: Vec<f32> = brows.concat().iter().map(|&b| f32::from(b)).collect();
    assert_eq!(got, want);

    let irows: Vec<Vec<i32>> = (0..5)
        .map(|r| (0..100).map(|c| r * 1000 - c).collect())
        .collect();
    let file = TempFile::new("a.ivecs", &vecs(&irows, |x: i32| x.to_le_bytes().to_vec()));
    let f = VectorFile::open(file.path()).unwrap();
    assert!(f.is_integer());
    let mut got = vec![0i32; 500];
    assert_eq!(f.read_i32(0, &mut got).unwrap(), 5);
    assert_eq!(got, irows.concat());
    assert!(message(f.read_f32(0, &mut [0f32; 100]).unwrap_err()).contains("holds integers"));
}

#[test]
fn vecs_errors_name_file_offset_and_expectation() {
    let rows: Vec<Vec<f32>> = (0..10).map(|_| values(8)).collect();
    let mut truncated = vecs(&rows, |x: f32| x.to_le_bytes().to_vec());
    truncated.truncate(truncated.len() - 3);
    let file = TempFile::new("cut.fvecs", &truncated);
    let err = message(VectorFile::open(file.path()).unwrap_err());
    assert!(
        err.contains(file.path()) && err.contains("at byte offset 324"),
        "{err}"
    );
    assert!(
        err.contains("records of dimension 8 take 36 bytes"),
        "{err}"
    );

    // Same total size, a middle record with another dimension: found when that block is read.
    let mut mixed = rows.clone();
    mixed[4] = values(7);
    mixed[5] = values(9);
    let file = TempFile::new(
        "mixed.fvecs",
        &vecs(&mixed, |x: f32| x.to_le_bytes().to_vec()),
    );
    let f = VectorFile::open(file.path()).unwrap();
    let mut out = vec![0f32; 8 * 10];
    assert_eq!(f.read_f32(0, &mut out[..32]).unwrap(), 4);
    let err = message(f.read_f32(0, &mut out).unwrap_err());
    assert!(err.contains("at byte offset 144"), "{err}");
    assert!(
        err.contains("record 4 has dimension 7, expected 8"),
        "{err}"
    );

    let file = TempFile::new("empty.fvecs", b"");
    assert!(message(VectorFile::open(file.path()).unwrap_err())
        .contains("empty: expected at least one .fvecs record"));
    let file = TempFile::new("neg.ivecs", &(-3i32).to_le_bytes());
    assert!(message(VectorFile::open(file.path()).unwrap_err()).contains("declares dimension -3"));
    let err = message(VectorFile::open("/nonexistent/x.fvecs").unwrap_err());
    assert!(
        err.contains("/nonexistent/x.fvecs") && err.contains("cannot open"),
        "{err}"
    );
    let err = message(VectorFile::open("data.csv").unwrap_err());
    assert!(err.contains("expected a file name ending in .npy"), "{err}");
}

#[test]
fn blocks_read_from_many_threads_agree() {
    let (rows, dims) = (5000, 32);
    let data = values(rows * dims);
    let file = TempFile::new(
        "par.npy",
        &npy("<f4", false, "(5000, 32)", &f32_bytes(&data)),
    );
    let f = VectorFile::open(file.path()).unwrap();
    let got: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let f = &f;
                scope.spawn(move || {
                    let mut out = vec![0f32; 1250 * dims];
                    assert_eq!(f.read_f32(t * 1250, &mut out).unwrap(), 1250);
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(got.concat(), data);
}
