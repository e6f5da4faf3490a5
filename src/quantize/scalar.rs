//! `int8` codes: each dimension's learned range cut into 256 steps. The range is learned from a
//! sample and widened by a sixteenth on each side, so later data may drift a little before it
//! is clamped (clamped components are counted, for the health report).

use crate::distance::MetricKind;
use crate::error::{Error, Result};
use crate::quantize::kernels::CodeKernels;

/// Share of a dimension's sampled range added on each side before it is cut into steps. The
/// sample is small (the rows a build links first, about one in M), so later rows exceed its
/// range: with 1/16, rows moved out of the clusters (1.5x + 0.5, 200 of them into 10k x 384)
/// missed their own vector at ef 64 22 times in 200, with 1/4 twice, as float32 does; the
/// coarser step costs no measurable recall.
const HEADROOM: f32 = 1.0 / 4.0;
/// Code values per dimension.
const LEVELS: f32 = 255.0;

/// Per-dimension ranges, learned once.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarQuantizer {
    /// Value of code 0, per dimension.
    lower: Vec<f32>,
    /// Value between two consecutive codes, per dimension (always > 0).
    step: Vec<f32>,
    /// The steps squared (the weights of L2 between two codes).
    step2: Vec<f32>,
}

impl ScalarQuantizer {
    /// Learns the ranges of `sample` (row-major, `dim` floats per row, at least one row).
    pub fn train(sample: &[f32], dim: usize) -> Result<ScalarQuantizer> {
        if dim == 0 || sample.is_empty() || !sample.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: sample.len(),
            });
        }
        let mut low = sample[..dim].to_vec();
        let mut high = low.clone();
        for row in sample.chunks_exact(dim) {
            for ((l, h), &x) in low.iter_mut().zip(high.iter_mut()).zip(row) {
                *l = l.min(x);
                *h = h.max(x);
            }
        }
        let (mut lower, mut step) = (Vec::with_capacity(dim), Vec::with_capacity(dim));
        for (l, h) in low.into_iter().zip(high) {
            let range = h - l;
            if range > 0.0 && range.is_finite() {
                lower.push(l - HEADROOM * range);
                step.push(range * (1.0 + 2.0 * HEADROOM) / LEVELS);
            } else {
                // One value seen: centre it, with steps small against its magnitude.
                let s = l.abs().max(1.0) * 1e-3;
                lower.push(l - 0.5 * LEVELS * s);
                step.push(s);
            }
        }
        Ok(ScalarQuantizer::with_ranges(lower, step))
    }

    /// A quantizer on checked ranges.
    fn with_ranges(lower: Vec<f32>, step: Vec<f32>) -> ScalarQuantizer {
        let step2 = step.iter().map(|s| s * s).collect();
        ScalarQuantizer { lower, step, step2 }
    }

    /// Rebuilds a quantizer from stored ranges; rejects non-positive or non-finite steps.
    pub fn from_parts(lower: Vec<f32>, step: Vec<f32>) -> Result<ScalarQuantizer> {
        if lower.len() != step.len() || lower.is_empty() {
            return Err(Error::Corrupt(format!(
                "int8 ranges: {} lower bounds for {} steps",
                lower.len(),
                step.len()
            )));
        }
        if let Some(i) = (0..step.len())
            .find(|&i| !(step[i] > 0.0 && step[i].is_finite() && lower[i].is_finite()))
        {
            return Err(Error::Corrupt(format!(
                "int8 range of dimension {i}: lower {} step {}",
                lower[i], step[i]
            )));
        }
        Ok(ScalarQuantizer::with_ranges(lower, step))
    }

    /// Dimensions.
    pub fn dim(&self) -> usize {
        self.lower.len()
    }

    /// Value of code 0 per dimension, and the step per dimension (what `from_parts` takes).
    pub fn parts(&self) -> (&[f32], &[f32]) {
        (&self.lower, &self.step)
    }

    /// Writes the code of `v` into `out`; returns how many components fell outside the learned
    /// range and were clamped.
    pub fn encode(&self, v: &[f32], out: &mut [u8]) -> usize {
        assert_eq!(v.len(), self.dim(), "int8 encode input length");
        assert_eq!(out.len(), self.dim(), "int8 encode output length");
        let mut clamped = 0;
        for (((o, &x), &l), &s) in out.iter_mut().zip(v).zip(&self.lower).zip(&self.step) {
            let level = ((x - l) / s).round();
            if !(0.0..=LEVELS).contains(&level) {
                clamped += 1;
            }
            *o = level.clamp(0.0, LEVELS) as u8;
        }
        clamped
    }

    /// Writes the value each code stands for into `out`.
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        assert_eq!(code.len(), self.dim(), "int8 decode input length");
        for (((o, &c), &l), &s) in out.iter_mut().zip(code).zip(&self.lower).zip(&self.step) {
            *o = l + s * c as f32;
        }
    }

    /// Distance under `metric` between the vectors two codes stand for.
    pub fn distance_between(&self, metric: MetricKind, a: &[u8], b: &[u8]) -> f32 {
        assert_eq!(a.len(), self.dim(), "int8 code length");
        assert_eq!(b.len(), self.dim(), "int8 code length");
        match metric {
            MetricKind::L2sq => CodeKernels::Best.code_l2(&self.step2, a, b),
            MetricKind::Ip | MetricKind::Cosine => {
                let dot = CodeKernels::Best.code_dot(&self.lower, &self.step, a, b);
                if metric == MetricKind::Cosine {
                    1.0 - dot
                } else {
                    -dot
                }
            }
        }
    }

    /// Prepares `query` (a stored-form float vector: normalized for cosine) for distances to
    /// codes under `metric`.
    pub fn prepare(&self, metric: MetricKind, query: &[f32]) -> ScalarQuery {
        assert_eq!(query.len(), self.dim(), "int8 query length");
        match metric {
            MetricKind::L2sq => ScalarQuery::Squared {
                // In code units, so a distance is sum(step^2 * (q' - c)^2).
                at: query
                    .iter()
                    .zip(&self.lower)
                    .zip(&self.step)
                    .map(|((&q, &l), &s)| (q - l) / s)
                    .collect(),
                weight: self.step.iter().map(|s| s * s).collect(),
            },
            MetricKind::Ip | MetricKind::Cosine => {
                // dot(q, decode(c)) = sum(q * lower) + sum(q * step * c).
                let base: f32 = query.iter().zip(&self.lower).map(|(q, l)| q * l).sum();
                ScalarQuery::Linear {
                    offset: if metric == MetricKind::Cosine {
                        1.0 - base
                    } else {
                        -base
                    },
                    weight: query.iter().zip(&self.step).map(|(q, s)| -q * s).collect(),
                }
            }
        }
    }
}

/// A query prepared for distances to `int8` codes (the metric's distance to the decoded code).
#[derive(Clone, Debug)]
pub enum ScalarQuery {
    /// L2: sum(weight * (at - code)^2).
    Squared { at: Vec<f32>, weight: Vec<f32> },
    /// Inner product and cosine: offset + sum(weight * code).
    Linear { offset: f32, weight: Vec<f32> },
}

impl ScalarQuery {
    /// Distance from the query to the vector `code` stands for.
    pub fn distance(&self, code: &[u8]) -> f32 {
        match self {
            ScalarQuery::Squared { at, weight } => {
                assert_eq!(code.len(), at.len(), "int8 code length");
                CodeKernels::Best.weighted_l2(at, weight, code)
            }
            ScalarQuery::Linear { offset, weight } => {
                assert_eq!(code.len(), weight.len(), "int8 code length");
                offset + CodeKernels::Best.weighted_sum(weight, code)
            }
        }
    }
}
