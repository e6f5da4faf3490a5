//! Code kernels: int8 distances and the 1-bit codes' masked sum. Each has one plain body,
//! compiled twice: for the baseline target (the fallback) and with AVX2+FMA, chosen once at run
//! time, so the vectorizer converts and multiplies eight lanes at a time where the CPU can.
//! Measured on 50k x 384 clustered rows (2 threads): the baseline-only kernels built an int8 index
//! 1.2x slower than float32.

use std::sync::OnceLock;

/// Sum of `w[i] * (at[i] - c[i])^2`: an L2 query against a code.
#[inline(always)]
fn weighted_l2_body(at: &[f32], w: &[f32], c: &[u8]) -> f32 {
    let n = c.len().min(at.len()).min(w.len());
    let (at, w, c) = (&at[..n], &w[..n], &c[..n]);
    let mut acc = [0.0f32; 8];
    for ((a, w), c) in at
        .chunks_exact(8)
        .zip(w.chunks_exact(8))
        .zip(c.chunks_exact(8))
    {
        for j in 0..8 {
            let d = a[j] - c[j] as f32;
            acc[j] += w[j] * d * d;
        }
    }
    for i in n / 8 * 8..n {
        let d = at[i] - c[i] as f32;
        acc[0] += w[i] * d * d;
    }
    acc.iter().sum()
}

/// Sum of `w[i] * c[i]`: an inner-product query against a code.
#[inline(always)]
fn weighted_sum_body(w: &[f32], c: &[u8]) -> f32 {
    let n = c.len().min(w.len());
    let (w, c) = (&w[..n], &c[..n]);
    let mut acc = [0.0f32; 8];
    for (w, c) in w.chunks_exact(8).zip(c.chunks_exact(8)) {
        for j in 0..8 {
            acc[j] += w[j] * c[j] as f32;
        }
    }
    for i in n / 8 * 8..n {
        acc[0] += w[i] * c[i] as f32;
    }
    acc.iter().sum()
}

/// Sum of `w[i] * (a[i] - b[i])^2`: squared L2 between two codes (`w` the squared steps).
#[inline(always)]
fn code_l2_body(w: &[f32], a: &[u8], b: &[u8]) -> f32 {
    let n = a.len().min(b.len()).min(w.len());
    let (w, a, b) = (&w[..n], &a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    for ((w, x), y) in w
        .chunks_exact(8)
        .zip(a.chunks_exact(8))
        .zip(b.chunks_exact(8))
    {
        for j in 0..8 {
            let d = x[j] as f32 - y[j] as f32;
            acc[j] += w[j] * d * d;
        }
    }
    for i in n / 8 * 8..n {
        let d = a[i] as f32 - b[i] as f32;
        acc[0] += w[i] * d * d;
    }
    acc.iter().sum()
}

/// Sum of `(l[i] + s[i] a[i]) * (l[i] + s[i] b[i])`: the inner product of two decoded codes.
#[inline(always)]
fn code_dot_body(l: &[f32], s: &[f32], a: &[u8], b: &[u8]) -> f32 {
    let n = a.len().min(b.len()).min(l.len()).min(s.len());
    let (l, s, a, b) = (&l[..n], &s[..n], &a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let parts = l.chunks_exact(8).zip(s.chunks_exact(8));
    for ((l, s), (x, y)) in parts.zip(a.chunks_exact(8).zip(b.chunks_exact(8))) {
        for j in 0..8 {
            acc[j] += (l[j] + s[j] * x[j] as f32) * (l[j] + s[j] * y[j] as f32);
        }
    }
    for i in n / 8 * 8..n {
        acc[0] += (l[i] + s[i] * a[i] as f32) * (l[i] + s[i] * b[i] as f32);
    }
    acc.iter().sum()
}

/// Sum of `y[i]` over the set bits `i` of `bits` (bit `i % 8` of byte `i / 8`): a 1-bit code's
/// half of an inner product.
#[inline(always)]
fn masked_sum_body(y: &[f32], bits: &[u8]) -> f32 {
    let n = bits.len().min(y.len() / 8);
    let mut acc = [0.0f32; 8];
    for (ys, &byte) in y.chunks_exact(8).zip(&bits[..n]) {
        for j in 0..8 {
            // Branch-free, so the vectorizer turns the eight lanes into one masked add.
            let keep = ((byte as u32 >> j) & 1) as f32;
            acc[j] += ys[j] * keep;
        }
    }
    acc.iter().sum()
}

/// Whether the AVX2+FMA builds run here (checked once).
fn use_avx2() -> bool {
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// The kernels: `Plain` always, `Best` the widest the CPU runs (what the index uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKernels {
    Plain,
    Best,
}

/// One public kernel: `$body` as compiled for the baseline, or its AVX2+FMA build for `Best` on a
/// CPU that has them.
macro_rules! dispatched {
    ($(#[$doc:meta])* $name:ident => $body:ident($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(self, $($arg: $ty),*) -> f32 {
            #[cfg(target_arch = "x86_64")]
            if self == CodeKernels::Best && use_avx2() {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) -> f32 {
                    $body($($arg),*)
                }
                // SAFETY: the CPU has AVX2 and FMA (`use_avx2`); the body is safe code over slices.
                return unsafe { wide($($arg),*) };
            }
            $body($($arg),*)
        }
    };
}

impl CodeKernels {
    dispatched!(
        /// Sum of `w[i] * (at[i] - c[i])^2` over the shortest input.
        weighted_l2 => weighted_l2_body(at: &[f32], w: &[f32], c: &[u8])
    );
    dispatched!(
        /// Sum of `w[i] * c[i]` over the shortest input.
        weighted_sum => weighted_sum_body(w: &[f32], c: &[u8])
    );
    dispatched!(
        /// Sum of `w[i] * (a[i] - b[i])^2` over the shortest input.
        code_l2 => code_l2_body(w: &[f32], a: &[u8], b: &[u8])
    );
    dispatched!(
        /// Sum of `y[i]` over the set bits of `bits` (bit `i % 8` of byte `i / 8`).
        masked_sum => masked_sum_body(y: &[f32], bits: &[u8])
    );
    dispatched!(
        /// Sum of `(l[i] + s[i] a[i]) * (l[i] + s[i] b[i])` over the shortest input.
        code_dot => code_dot_body(l: &[f32], s: &[f32], a: &[u8], b: &[u8])
    );
}
