//! Index parameters: defaults and ranges (matching the `vss` extension's option names).

use crate::distance::MetricKind;
use crate::error::{Error, Result};
use crate::quantize::Quantization;

/// Default number of neighbours per node on the upper layers.
pub const M_DEFAULT: usize = 16;
/// Smallest useful `M`.
pub const M_MIN: usize = 2;
/// Largest accepted `M`.
pub const M_MAX: usize = 512;
/// Largest accepted `M0` (neighbours on layer 0); its default is `2 * M`.
pub const M0_MAX: usize = 2048;
/// Default candidate-list size while building.
pub const EF_CONSTRUCTION_DEFAULT: usize = 128;
/// Smallest accepted `ef_construction`.
pub const EF_CONSTRUCTION_MIN: usize = 1;
/// Largest accepted `ef_construction`.
pub const EF_CONSTRUCTION_MAX: usize = 10_000;
/// Default candidate-list size while searching.
pub const EF_SEARCH_DEFAULT: usize = 64;
/// Smallest accepted `ef_search`.
pub const EF_SEARCH_MIN: usize = 1;
/// Largest accepted `ef_search`.
pub const EF_SEARCH_MAX: usize = 100_000;
/// Largest accepted vector dimension.
pub const DIM_MAX: usize = 65_535;
/// Largest accepted over-fetch factor (candidates per result a re-ranking reader takes).
pub const OVERFETCH_MAX: usize = 64;
/// Default seed of the level generator.
pub const SEED_DEFAULT: u64 = 0x5eed_4e53_5721_0001;

/// Validated, immutable index parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub metric: MetricKind,
    pub dim: usize,
    pub m: usize,
    pub m0: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
    pub seed: u64,
    /// How stored vectors are kept (float32 or compact codes).
    pub quantization: Quantization,
    /// Candidates per wanted result a re-ranking reader takes (see `Hnsw::candidates`).
    pub overfetch: usize,
}

impl Params {
    /// Starts a builder with every default filled in.
    pub fn builder(metric: MetricKind, dim: usize) -> ParamsBuilder {
        ParamsBuilder {
            metric,
            dim,
            m: M_DEFAULT,
            m0: None,
            ef_construction: EF_CONSTRUCTION_DEFAULT,
            ef_search: EF_SEARCH_DEFAULT,
            seed: SEED_DEFAULT,
            quantization: Quantization::F32,
            overfetch: None,
        }
    }

    /// Bytes an index with these parameters grows by, on average, per inserted row (what a caller
    /// reserves before inserting).
    pub fn bytes_per_row(&self) -> usize {
        crate::graph::bytes_per_row(self)
    }

    /// Whether `vector` can be indexed with these parameters: its length, finite components, and
    /// what the metric needs (a direction, for cosine). Writers check rows with it before they
    /// reach the index, so a bad row fails its statement, not a later commit.
    pub fn check_vector(&self, vector: &[f32]) -> Result<()> {
        if vector.len() != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got: vector.len(),
            });
        }
        crate::distance::check_finite(vector)?;
        self.metric.metric().prepare(&mut vector.to_vec())
    }

    /// Checks every range; used by the builder and by deserialization.
    pub fn validate(&self) -> Result<()> {
        check("dimensions", self.dim, 1, DIM_MAX)?;
        check("M", self.m, M_MIN, M_MAX)?;
        check("M0", self.m0, M_MIN, M0_MAX)?;
        if self.m0 < self.m {
            return Err(Error::ParameterConflict(format!(
                "M0 must be at least M ({}), not {}",
                self.m, self.m0
            )));
        }
        check(
            "ef_construction",
            self.ef_construction,
            EF_CONSTRUCTION_MIN,
            EF_CONSTRUCTION_MAX,
        )?;
        check("ef_search", self.ef_search, EF_SEARCH_MIN, EF_SEARCH_MAX)?;
        check("overfetch", self.overfetch, 1, OVERFETCH_MAX)?;
        if self.quantization == Quantization::F32 && self.overfetch != 1 {
            return Err(Error::ParameterConflict(format!(
                "overfetch applies to quantized indexes ('int8', 'bit'): float32 distances are \
                 exact, so it must be 1 with quantization 'f32', not {}",
                self.overfetch
            )));
        }
        Ok(())
    }

    /// Level multiplier 1/ln(M) from the HNSW paper.
    pub(crate) fn level_multiplier(&self) -> f64 {
        1.0 / (self.m as f64).ln()
    }

    /// Neighbour capacity of a layer.
    /// How many links a new node chooses for itself on `level`: M, and a quarter more on layer 0
    /// (where lists hold up to M0). Measured on 20k-row sets (make bench-quality, 3 seeds): loose
    /// clusters at ef 32 0.903 -> 0.909 recall@10, Gaussian 32-d 0.812 -> 0.827, build time
    /// within noise; a full M0 reaches 0.917 but builds 12-25% slower.
    pub(crate) fn own_links(&self, level: usize) -> usize {
        if level == 0 {
            (self.m + self.m / 4).min(self.m0)
        } else {
            self.m
        }
    }

    pub(crate) fn max_links(&self, level: usize) -> usize {
        if level == 0 {
            self.m0
        } else {
            self.m
        }
    }
}

/// Range check with the parameter's name and limits in the error.
pub(crate) fn check(name: &'static str, value: usize, min: usize, max: usize) -> Result<()> {
    if value < min || value > max {
        return Err(Error::Parameter {
            name,
            value: value as i64,
            min: min as u64,
            max: max as u64,
        });
    }
    Ok(())
}

/// Builder for [`Params`]; unset values keep their documented defaults.
#[derive(Debug, Clone)]
pub struct ParamsBuilder {
    metric: MetricKind,
    dim: usize,
    m: usize,
    m0: Option<usize>,
    ef_construction: usize,
    ef_search: usize,
    seed: u64,
    quantization: Quantization,
    overfetch: Option<usize>,
}

impl ParamsBuilder {
    /// Neighbours per node on upper layers (default 16, range 2..=512).
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }
    /// Neighbours per node on layer 0 (default 2·M, range M..=2048).
    pub fn m0(mut self, m0: usize) -> Self {
        self.m0 = Some(m0);
        self
    }
    /// Candidate list size while inserting (default 128, range 1..=10000).
    pub fn ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }
    /// Default candidate list size while searching (default 64, range 1..=100000).
    pub fn ef_search(mut self, ef: usize) -> Self {
        self.ef_search = ef;
        self
    }
    /// Seed of the deterministic level generator.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// How stored vectors are kept (default float32).
    pub fn quantization(mut self, quantization: Quantization) -> Self {
        self.quantization = quantization;
        self
    }
    /// Candidates per result a re-ranking reader takes (default: the quantization's, 1 for
    /// float32; range 1..=64).
    pub fn overfetch(mut self, overfetch: usize) -> Self {
        self.overfetch = Some(overfetch);
        self
    }
    /// Validates and returns the parameters.
    pub fn build(self) -> Result<Params> {
        let params = Params {
            metric: self.metric,
            dim: self.dim,
            m: self.m,
            m0: self.m0.unwrap_or(self.m.saturating_mul(2)),
            ef_construction: self.ef_construction,
            ef_search: self.ef_search,
            seed: self.seed,
            quantization: self.quantization,
            overfetch: self
                .overfetch
                .unwrap_or(self.quantization.default_overfetch()),
        };
        params.validate()?;
        Ok(params)
    }
}
