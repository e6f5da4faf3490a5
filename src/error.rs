//! The single error type of the HNSW core.

use std::fmt;

/// Every failure the core can report; messages carry the numbers involved.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A vector's length differs from the index dimension.
    DimensionMismatch { expected: usize, got: usize },
    /// A vector component is NaN or infinite.
    NonFinite { position: usize, value: f32 },
    /// The cosine metric cannot place a vector of length zero.
    ZeroVector,
    /// A parameter is outside its allowed range.
    Parameter {
        name: &'static str,
        value: i64,
        min: u64,
        max: u64,
    },
    /// An option takes one of a few names.
    Choice {
        name: &'static str,
        value: String,
        choices: &'static str,
    },
    /// A parameter conflicts with another one.
    ParameterConflict(String),
    /// The label is already present (and not deleted) in the index.
    DuplicateLabel(u64),
    /// The index cannot hold more nodes.
    Capacity { max: u64 },
    /// Serialized bytes are not a valid index (truncated, corrupted, or foreign).
    Corrupt(String),
    /// Serialized bytes use a format version this build cannot read.
    UnsupportedVersion { found: u32, supported: u32 },
    /// A vector file (`.npy`, `.fvecs`, ...) that cannot be read as promised.
    VectorFile {
        path: String,
        offset: u64,
        what: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DimensionMismatch { expected, got } => {
                write!(f, "expected {expected} dimensions, not {got}")
            }
            Error::NonFinite { position, value } => write!(
                f,
                "vector component {position} is {value}: NaN and infinite values cannot be indexed"
            ),
            Error::ZeroVector => {
                write!(f, "a vector of length zero has no direction and cannot be indexed with the cosine metric")
            }
            Error::Parameter {
                name,
                value,
                min,
                max,
            } => {
                write!(f, "{name} must be between {min} and {max}, not {value}")
            }
            Error::Choice {
                name,
                value,
                choices,
            } => write!(f, "{name} must be {choices}, not '{value}'"),
            Error::ParameterConflict(msg) => f.write_str(msg),
            Error::DuplicateLabel(label) => write!(f, "label {label} is already in the index"),
            Error::Capacity { max } => {
                write!(f, "the index is full: it holds at most {max} vectors")
            }
            Error::Corrupt(what) => write!(f, "index data is corrupt: {what}"),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "index data has format version {found}, this build reads version {supported}"
            ),
            Error::VectorFile { path, offset, what } => {
                write!(f, "{path}: at byte offset {offset}: {what}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Result alias used throughout the core.
pub type Result<T> = std::result::Result<T, Error>;
