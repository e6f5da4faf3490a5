//! Cosine distance.

use super::{KernelSet, Metric, RawKernel};
use crate::error::{Error, Result};

/// 1 - cos(a, b). Vectors are stored normalized so the kernel is one inner product.
pub struct Cosine;

impl Metric for Cosine {
    fn name(&self) -> &'static str {
        "cosine"
    }
    fn prepare(&self, v: &mut [f32]) -> Result<()> {
        // f64 so that large finite components cannot overflow the norm.
        let norm = v
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            return Err(Error::ZeroVector);
        }
        for x in v.iter_mut() {
            *x = (*x as f64 / norm) as f32;
        }
        Ok(())
    }
    fn raw_kernel(&self, set: &KernelSet) -> RawKernel {
        set.one_minus_dot
    }
}
