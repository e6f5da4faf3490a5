//! Portable kernels: the reference the SIMD kernels are tested against.

use super::KernelSet;

pub(super) static SET: KernelSet = KernelSet {
    name: "scalar",
    dot,
    l2sq,
    l1,
    neg_dot,
    one_minus_dot,
};

// Eight independent lanes let the compiler vectorize with SSE2 and keep rounding stable.
#[inline(always)]
fn fold8(a: &[f32], b: &[f32], op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ta, tb) = (a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for (lane, acc) in acc.iter_mut().enumerate() {
            *acc += op(x[lane], y[lane]);
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for (&x, &y) in ta.iter().zip(tb) {
        sum += op(x, y);
    }
    sum
}

/// # Safety
/// `a` and `b` must be valid for `n` reads.
unsafe fn dot(a: *const f32, b: *const f32, n: usize) -> f32 {
    let (a, b) = (
        std::slice::from_raw_parts(a, n),
        std::slice::from_raw_parts(b, n),
    );
    fold8(a, b, |x, y| x * y)
}

/// # Safety
/// `a` and `b` must be valid for `n` reads.
unsafe fn l2sq(a: *const f32, b: *const f32, n: usize) -> f32 {
    let (a, b) = (
        std::slice::from_raw_parts(a, n),
        std::slice::from_raw_parts(b, n),
    );
    fold8(a, b, |x, y| (x - y) * (x - y))
}

/// # Safety
/// `a` and `b` must be valid for `n` reads.
unsafe fn l1(a: *const f32, b: *const f32, n: usize) -> f32 {
    let (a, b) = (
        std::slice::from_raw_parts(a, n),
        std::slice::from_raw_parts(b, n),
    );
    fold8(a, b, |x, y| (x - y).abs())
}

/// # Safety
/// `a` and `b` must be valid for `n` reads.
unsafe fn neg_dot(a: *const f32, b: *const f32, n: usize) -> f32 {
    -dot(a, b, n)
}

/// # Safety
/// `a` and `b` must be valid for `n` reads.
unsafe fn one_minus_dot(a: *const f32, b: *const f32, n: usize) -> f32 {
    1.0 - dot(a, b, n)
}

/// Squared Euclidean distance of `f64` arrays (SQL `DOUBLE[n]` inputs).
pub fn l2sq_f64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Manhattan distance of `f64` arrays.
pub fn l1_f64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum()
}

/// `v / |v|` of an `f64` array into `out`; a zero vector stays zero.
pub fn normalize_f64_into(v: &[f64], out: &mut [f64]) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    for (o, x) in out.iter_mut().zip(v) {
        *o = if norm == 0.0 { 0.0 } else { x / norm };
    }
}
