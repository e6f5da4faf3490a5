//! Negative inner product.

use super::{KernelSet, Metric, RawKernel};
use crate::error::Result;

/// -a·b, the value of `array_negative_inner_product`: larger products rank closer.
pub struct InnerProduct;

impl Metric for InnerProduct {
    fn name(&self) -> &'static str {
        "ip"
    }
    fn prepare(&self, _v: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn raw_kernel(&self, set: &KernelSet) -> RawKernel {
        set.neg_dot
    }
}
