//! AVX2+FMA and AVX-512 kernels. Every function here is `unsafe`: callers must have checked
//! the CPU features (done once in `supported()`) and pass pointers valid for `n` reads.

use super::KernelSet;
use std::arch::x86_64::*;

static AVX2: KernelSet = KernelSet {
    name: "avx2",
    dot: dot_avx2,
    l2sq: l2sq_avx2,
    l1: l1_avx2,
    neg_dot: neg_dot_avx2,
    one_minus_dot: one_minus_dot_avx2,
};

static AVX512: KernelSet = KernelSet {
    name: "avx512",
    dot: dot_avx512,
    l2sq: l2sq_avx512,
    l1: l1_avx512,
    neg_dot: neg_dot_avx512,
    one_minus_dot: one_minus_dot_avx512,
};

/// Kernel sets the running CPU supports, narrowest first.
pub(super) fn supported() -> Vec<&'static KernelSet> {
    let mut sets = Vec::new();
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        sets.push(&AVX2);
        if is_x86_feature_detected!("avx512f") {
            sets.push(&AVX512);
        }
    }
    sets
}

#[inline(always)]
unsafe fn hsum256(v: __m256) -> f32 {
    let lo = _mm256_castps256_ps128(v);
    let hi = _mm256_extractf128_ps(v, 1);
    let s = _mm_add_ps(lo, hi);
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

// One AVX2 kernel body: `$step` folds 8 lanes into `$acc`, `$tail` one scalar pair. Written as
// macro-expanded expressions, not closures, so everything compiles with the target features.
macro_rules! avx2_fold {
    ($name:ident, |$acc:ident, $x:ident, $y:ident| $step:expr, |$tx:ident, $ty:ident| $tail:expr) => {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $name(a: *const f32, b: *const f32, n: usize) -> f32 {
            #[inline]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn step($acc: __m256, $x: __m256, $y: __m256) -> __m256 {
                $step
            }
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i + 32 <= n {
                for (k, lane) in acc.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(a.add(i + 8 * k));
                    let y = _mm256_loadu_ps(b.add(i + 8 * k));
                    *lane = step(*lane, x, y);
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = step(acc[0], _mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i)));
                i += 8;
            }
            let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let mut total = hsum256(sum);
            while i < n {
                let ($tx, $ty) = (*a.add(i), *b.add(i));
                total += $tail;
                i += 1;
            }
            total
        }
    };
}

avx2_fold!(dot_avx2, |acc, x, y| _mm256_fmadd_ps(x, y, acc), |x, y| x
    * y);
avx2_fold!(
    l2sq_avx2,
    |acc, x, y| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    },
    |x, y| (x - y) * (x - y)
);
avx2_fold!(
    l1_avx2,
    |acc, x, y| {
        let sign = _mm256_set1_ps(-0.0);
        _mm256_add_ps(acc, _mm256_andnot_ps(sign, _mm256_sub_ps(x, y)))
    },
    |x, y| (x - y).abs()
);

#[target_feature(enable = "avx2,fma")]
unsafe fn neg_dot_avx2(a: *const f32, b: *const f32, n: usize) -> f32 {
    -dot_avx2(a, b, n)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn one_minus_dot_avx2(a: *const f32, b: *const f32, n: usize) -> f32 {
    1.0 - dot_avx2(a, b, n)
}

// One AVX-512 kernel body; the tail is a masked load, so there is no scalar loop.
macro_rules! avx512_fold {
    ($name:ident, |$acc:ident, $x:ident, $y:ident| $step:expr) => {
        #[target_feature(enable = "avx512f")]
        unsafe fn $name(a: *const f32, b: *const f32, n: usize) -> f32 {
            #[inline]
            #[target_feature(enable = "avx512f")]
            unsafe fn step($acc: __m512, $x: __m512, $y: __m512) -> __m512 {
                $step
            }
            let mut acc = [_mm512_setzero_ps(); 4];
            let mut i = 0;
            while i + 64 <= n {
                for (k, lane) in acc.iter_mut().enumerate() {
                    let x = _mm512_loadu_ps(a.add(i + 16 * k));
                    let y = _mm512_loadu_ps(b.add(i + 16 * k));
                    *lane = step(*lane, x, y);
                }
                i += 64;
            }
            while i + 16 <= n {
                acc[0] = step(acc[0], _mm512_loadu_ps(a.add(i)), _mm512_loadu_ps(b.add(i)));
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = ((1u32 << (n - i)) - 1) as __mmask16;
                let x = _mm512_maskz_loadu_ps(mask, a.add(i));
                let y = _mm512_maskz_loadu_ps(mask, b.add(i));
                acc[1] = step(acc[1], x, y);
            }
            let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
            _mm512_reduce_add_ps(sum)
        }
    };
}

avx512_fold!(dot_avx512, |acc, x, y| _mm512_fmadd_ps(x, y, acc));
avx512_fold!(l2sq_avx512, |acc, x, y| {
    let d = _mm512_sub_ps(x, y);
    _mm512_fmadd_ps(d, d, acc)
});
avx512_fold!(l1_avx512, |acc, x, y| _mm512_add_ps(
    acc,
    _mm512_abs_ps(_mm512_sub_ps(x, y))
));

#[target_feature(enable = "avx512f")]
unsafe fn neg_dot_avx512(a: *const f32, b: *const f32, n: usize) -> f32 {
    -dot_avx512(a, b, n)
}

#[target_feature(enable = "avx512f")]
unsafe fn one_minus_dot_avx512(a: *const f32, b: *const f32, n: usize) -> f32 {
    1.0 - dot_avx512(a, b, n)
}
