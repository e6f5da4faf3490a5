//! Distance kernels and metrics.
//!
//! Every `unsafe` SIMD kernel lives in `x86.rs`; `scalar.rs` is the portable fallback that the
//! tests compare them against. The best kernel set for the running CPU is chosen once.

mod cosine;
mod ip;
mod l2sq;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::error::{Error, Result};
use std::sync::OnceLock;

pub use cosine::Cosine;
pub use ip::InnerProduct;
pub use l2sq::L2Squared;
pub use scalar::{l1_f64, l2sq_f64, normalize_f64_into};

/// Raw kernel over two pointers to `n` floats. Only sound to call when the kernel set it came
/// from is supported by the CPU, which [`KernelSet`]'s constructors guarantee.
pub(crate) type RawKernel = unsafe fn(*const f32, *const f32, usize) -> f32;

/// One instruction set's kernels. Instances exist only for instruction sets the CPU supports.
pub struct KernelSet {
    name: &'static str,
    dot: RawKernel,
    l2sq: RawKernel,
    l1: RawKernel,
    neg_dot: RawKernel,
    one_minus_dot: RawKernel,
}

macro_rules! safe_kernel {
    ($(#[$doc:meta] $name:ident),*) => {$(
        #[$doc]
        pub fn $name(&self, a: &[f32], b: &[f32]) -> f32 {
            assert_eq!(a.len(), b.len(), "kernel inputs differ in length");
            // SAFETY: lengths match and the set exists only when the CPU supports it.
            unsafe { (self.$name)(a.as_ptr(), b.as_ptr(), a.len()) }
        }
    )*};
}

impl KernelSet {
    /// Instruction set name: `scalar`, `avx2` or `avx512`.
    pub fn name(&self) -> &'static str {
        self.name
    }
    safe_kernel!(
        /// Inner product.
        dot,
        /// Squared Euclidean distance.
        l2sq,
        /// Manhattan (L1) distance.
        l1,
        /// Negative inner product.
        neg_dot,
        /// One minus the inner product (cosine distance of unit vectors).
        one_minus_dot
    );
}

/// Every kernel set the running CPU supports, scalar first.
pub fn available_kernel_sets() -> Vec<&'static KernelSet> {
    let mut sets = vec![&scalar::SET];
    #[cfg(target_arch = "x86_64")]
    sets.extend(x86::supported());
    sets
}

/// The kernel set used by the index: the widest supported one, unless `HNSW_SIMD` names
/// another (`scalar`, `avx2`, `avx512`) for benchmarking.
pub fn kernels() -> &'static KernelSet {
    static BEST: OnceLock<&'static KernelSet> = OnceLock::new();
    BEST.get_or_init(|| {
        let sets = available_kernel_sets();
        if let Ok(wanted) = std::env::var("HNSW_SIMD") {
            if let Some(set) = sets.iter().find(|s| s.name == wanted) {
                return set;
            }
        }
        sets[sets.len() - 1]
    })
}

/// Squared Euclidean distance with the best kernel.
pub fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    kernels().l2sq(a, b)
}

/// Manhattan distance with the best kernel.
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    kernels().l1(a, b)
}

/// Writes `v / |v|` into `out`; a zero vector stays zero (as pgvector's `l2_normalize`).
pub fn normalize_into(v: &[f32], out: &mut [f32]) {
    assert_eq!(v.len(), out.len(), "normalize buffers differ in length");
    let norm = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        out.fill(0.0);
        return;
    }
    for (o, &x) in out.iter_mut().zip(v) {
        *o = (x as f64 / norm) as f32;
    }
}

/// Distance function of an index, bound to one metric and kernel set.
#[derive(Clone, Copy)]
pub(crate) struct DistanceKernel {
    raw: RawKernel,
}

impl DistanceKernel {
    /// Distance between two prepared vectors of equal length.
    #[inline(always)]
    pub(crate) fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        // SAFETY: the kernel comes from a supported set and the slices have equal length.
        unsafe { (self.raw)(a.as_ptr(), b.as_ptr(), a.len().min(b.len())) }
    }
}

/// The metrics an index can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Squared Euclidean distance (`array_distance` orders the same way).
    L2sq,
    /// Cosine distance, 1 - cos(a, b).
    Cosine,
    /// Negative inner product.
    Ip,
}

impl MetricKind {
    /// All metrics, in storage-code order.
    pub const ALL: [MetricKind; 3] = [MetricKind::L2sq, MetricKind::Cosine, MetricKind::Ip];

    /// Option value as written in `WITH (metric = ...)`.
    pub fn name(self) -> &'static str {
        self.metric().name()
    }

    /// Parses an option value (case-insensitive).
    pub fn from_name(name: &str) -> Option<MetricKind> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The metric's behaviour.
    pub fn metric(self) -> &'static dyn Metric {
        match self {
            MetricKind::L2sq => &L2Squared,
            MetricKind::Cosine => &Cosine,
            MetricKind::Ip => &InnerProduct,
        }
    }

    /// Code of the metric in stored images and the C ABI.
    pub fn code(self) -> u8 {
        match self {
            MetricKind::L2sq => 1,
            MetricKind::Cosine => 2,
            MetricKind::Ip => 3,
        }
    }

    /// The metric of a stored code.
    pub fn from_code(code: u8) -> Option<MetricKind> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    pub(crate) fn kernel(self) -> DistanceKernel {
        DistanceKernel {
            raw: self.metric().raw_kernel(kernels()),
        }
    }
}

/// A distance metric: how vectors are validated and stored, and which kernel compares them.
pub trait Metric: Sync {
    /// Option value naming the metric.
    fn name(&self) -> &'static str;
    /// Rewrites a finite vector into its stored form (cosine normalizes), or rejects it.
    fn prepare(&self, v: &mut [f32]) -> Result<()>;
    /// The kernel computing the distance between stored vectors.
    #[doc(hidden)]
    fn raw_kernel(&self, set: &KernelSet) -> RawKernel;
    /// Distance between two prepared vectors with the given kernel set.
    fn distance(&self, set: &KernelSet, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "distance inputs differ in length");
        // SAFETY: the set exists only when supported; lengths match.
        unsafe { (self.raw_kernel(set))(a.as_ptr(), b.as_ptr(), a.len()) }
    }
}

/// Rejects NaN and infinite components (shared by every metric).
pub(crate) fn check_finite(v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(position) => Err(Error::NonFinite {
            position,
            value: v[position],
        }),
        None => Ok(()),
    }
}
