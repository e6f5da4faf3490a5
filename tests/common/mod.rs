//! Seeded synthetic data, exact search and whole-index images, shared by the tests.
#![allow(dead_code)] // each test crate uses its own subset

use hnsw::distance::kernels;
use hnsw::distance::{Metric, MetricKind};
use hnsw::Hnsw;

/// Small, fast, seeded generator (xoshiro256**), so data is identical on every machine.
#[derive(Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Generator seeded through SplitMix64.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            hnsw::hash::mix64(x)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Standard normal sample (Box-Muller).
    pub fn gaussian(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// `n` vectors of `dim` floats around `clusters` Gaussian centres, row-major.
pub fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| rng.gaussian() * 4.0).collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.below(clusters);
        for d in 0..dim {
            out.push(centres[c * dim + d] + rng.gaussian());
        }
    }
    out
}

/// `n` vectors of independent standard normal components.
pub fn gaussian(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..n * dim).map(|_| rng.gaussian()).collect()
}

/// Exact k nearest labels (row numbers) of `query` among the rows of `data` not in `skip`.
pub fn exact_knn(
    metric: MetricKind,
    data: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    skip: &dyn Fn(usize) -> bool,
) -> Vec<u64> {
    let m: &dyn Metric = metric.metric();
    let mut q = query.to_vec();
    m.prepare(&mut q).expect("query must be valid");
    let mut row = vec![0.0f32; dim];
    let mut scored: Vec<(f32, u64)> = data
        .chunks_exact(dim)
        .enumerate()
        .filter(|(i, _)| !skip(*i))
        .map(|(i, v)| {
            row.copy_from_slice(v);
            m.prepare(&mut row).expect("data must be valid");
            (m.distance(kernels(), &q, &row), i as u64)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.truncate(k);
    scored.into_iter().map(|(_, i)| i).collect()
}

/// Fraction of `truth` found in `found`.
pub fn recall(found: &[u64], truth: &[u64]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    let hits = truth.iter().filter(|t| found.contains(t)).count();
    hits as f64 / truth.len() as f64
}

/// The whole paged image of an index (4 KiB pages): equal images mean equal indexes.
pub fn image(index: &Hnsw) -> Vec<u8> {
    hnsw::format::write_image(index, 4096).expect("image renders")
}

/// Loads an index from [`image`]'s bytes.
pub fn from_image(bytes: &[u8]) -> hnsw::Result<Hnsw> {
    hnsw::format::read_image(bytes)
}
