//! Compact codes for stored vectors, so the graph can navigate without a float copy of every
//! vector: `int8` keeps one byte per dimension on learned per-dimension ranges
//! ([`ScalarQuantizer`]); `bit` keeps one bit per dimension of a randomly rotated, centred vector
//! plus two floats, with an unbiased estimator of distances to a float query
//! ([`BinaryQuantizer`]). A code only ranks candidates: the exact ranking is the caller's, over a
//! few more candidates than it asks for.

mod binary;
pub mod kernels;
mod rotation;
mod scalar;

pub use binary::{BinaryQuantizer, BinaryQuery};
pub use rotation::Rotation;
pub use scalar::{ScalarQuantizer, ScalarQuery};

use crate::error::{Error, Result};

/// How an index stores its vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantization {
    /// Full float32 vectors (exact distances).
    F32,
    /// One byte per dimension.
    Int8,
    /// One bit per (rotated, padded) dimension and two floats.
    Bit,
}

impl Quantization {
    /// Every quantization, in the order options list them.
    pub const ALL: [Quantization; 3] = [Quantization::F32, Quantization::Int8, Quantization::Bit];

    /// The option value naming it.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::F32 => "f32",
            Quantization::Int8 => "int8",
            Quantization::Bit => "bit",
        }
    }

    /// Its code in the C ABI and in stored images (0 f32, 1 int8, 2 bit).
    pub fn code(self) -> u8 {
        match self {
            Quantization::F32 => 0,
            Quantization::Int8 => 1,
            Quantization::Bit => 2,
        }
    }

    /// The quantization of a code, if any.
    pub fn from_code(code: u8) -> Option<Quantization> {
        Quantization::ALL.into_iter().find(|q| q.code() == code)
    }

    /// Parses an option value (case-insensitive); the error lists the accepted names.
    pub fn parse(name: &str) -> Result<Quantization> {
        Quantization::ALL
            .into_iter()
            .find(|q| q.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::Choice {
                name: "quantization",
                value: name.to_string(),
                choices: "'f32', 'int8' or 'bit'",
            })
    }

    /// How many times k candidates a re-ranking reader takes by default: the shortlist whose
    /// exact re-ranking finds the true top 10 (brute force over 10k x 384 clustered data, every
    /// metric, tests/quantize.rs: int8 at 2x recall 1.000, bit at 8x 0.983-0.990).
    pub fn default_overfetch(self) -> usize {
        match self {
            Quantization::F32 => 1,
            Quantization::Int8 => 2,
            Quantization::Bit => 8,
        }
    }

    /// Bytes of one stored vector of `dim` dimensions.
    pub fn code_bytes(self, dim: usize) -> usize {
        match self {
            Quantization::F32 => 4 * dim,
            Quantization::Int8 => dim,
            Quantization::Bit => Rotation::padded(dim) / 8 + binary::FACTOR_BYTES,
        }
    }
}
