//! Squared Euclidean distance.

use super::{KernelSet, Metric, RawKernel};
use crate::error::Result;

/// Squared L2: same order as `array_distance`, without the square root.
pub struct L2Squared;

impl Metric for L2Squared {
    fn name(&self) -> &'static str {
        "l2sq"
    }
    fn prepare(&self, _v: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn raw_kernel(&self, set: &KernelSet) -> RawKernel {
        set.l2sq
    }
}
