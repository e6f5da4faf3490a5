//! `bit` codes, after RaBitQ (Gao & Long, SIGMOD 2024): a vector x is centred on the nearest of a
//! few centres c learned by k-means, rotated at random and normalized, o = R(x - c) / |x - c|,
//! and stored as the signs of o (one bit per padded dimension) plus |x - c|, <ō, o> (ō: the sign
//! vector scaled to unit length) and the centre's number. For a float query the estimator
//! <o, y> ≈ <ō, y> / <ō, o> is unbiased for any vector y, which gives every metric's distance
//! from inner products. Its error grows with |x - c| |q - c|, hence local centres: one global
//! mean left clustered data with errors as large as the gaps between near neighbours. A query is
//! rotated once; a distance is one masked sum of the rotated query over the code's set bits
//! (`CodeKernels::masked_sum`), the code carrying its own centre's term.

use super::rotation::Rotation;
use crate::distance::MetricKind;
use crate::error::{Error, Result};
use crate::hash::mix64;
use crate::quantize::kernels::CodeKernels;
use std::sync::Arc;

/// Bytes after the bits: |x - c|, <ō, o> and sqrt(D) <ō, Rc> (the code's own centre's term, so
/// distances need no per-centre table) as little-endian f32, the centre as u16.
pub(crate) const FACTOR_BYTES: usize = 14;
/// Lloyd iterations when learning the centres.
const KMEANS_ROUNDS: usize = 8;

/// The centres and rotation codes are made with (shared: queries keep a handle to it).
#[derive(Clone, Debug)]
pub struct BinaryQuantizer {
    inner: Arc<Inner>,
}

/// What a quantizer holds: its definition, and tables derived from it for code-to-code
/// estimates.
#[derive(Debug)]
pub struct Inner {
    metric: MetricKind,
    dim: usize,
    /// Row-major centres.
    centres: Vec<f32>,
    rotation: Rotation,
    seed: u64,
    /// Per centre: its rotated form (for the terms codes of other centres need).
    centre_tables: Vec<CentreTable>,
    /// Per pair of centres (row-major): squared distance and inner product.
    centre_l2: Vec<f32>,
    centre_dot: Vec<f32>,
    /// cos(pi h / D) for h differing bits of D (the angle estimate between two codes).
    cosines: Vec<f32>,
}

impl std::ops::Deref for BinaryQuantizer {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

fn l2sq(a: &[f32], b: &[f32]) -> f32 {
    crate::distance::l2sq(a, b)
}

/// Rows k-means learns from at most: 64 per centre is plenty, and a build's first batch can be
/// the whole table (10k x 384 spent a third of its build time in k-means over all of it).
const KMEANS_ROWS_PER_CENTRE: usize = 64;

impl BinaryQuantizer {
    /// Learns up to `centres` centres from `sample` (row-major, `dim` floats per row, stored form:
    /// normalized for cosine) by k-means, and draws the rotation from `seed`.
    pub fn train(
        metric: MetricKind,
        sample: &[f32],
        dim: usize,
        centres: usize,
        seed: u64,
    ) -> Result<BinaryQuantizer> {
        if dim == 0 || sample.is_empty() || !sample.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: sample.len(),
            });
        }
        let all_rows = sample.len() / dim;
        let count = centres.clamp(1, all_rows.min(u16::MAX as usize));
        // Evenly spaced rows of a large sample.
        let keep = (count * KMEANS_ROWS_PER_CENTRE).min(all_rows);
        let thinned: Vec<f32>;
        let sample = if keep < all_rows {
            thinned = (0..keep)
                .flat_map(|i| {
                    let row = i * all_rows / keep;
                    sample[row * dim..(row + 1) * dim].iter().copied()
                })
                .collect();
            &thinned[..]
        } else {
            sample
        };
        // k-means++ seeding (each next centre drawn with probability proportional to its squared
        // distance from the centres so far), then Lloyd rounds; an emptied centre keeps its place.
        // Seeding with random rows merged whole clusters under one centre and split others; a
        // merged cluster's codes measure offsets as large as the gap between clusters, and a bit
        // index then needed 4x the candidates for the same recall.
        let mut means = kmeans_plus_plus(sample, dim, count, seed);
        for _ in 0..KMEANS_ROUNDS {
            let mut sums = vec![0.0f64; count * dim];
            let mut sizes = vec![0usize; count];
            for row in sample.chunks_exact(dim) {
                let c = nearest(&means, dim, row);
                sizes[c] += 1;
                for (s, &x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row) {
                    *s += x as f64;
                }
            }
            for c in 0..count {
                if sizes[c] > 0 {
                    for d in 0..dim {
                        means[c * dim + d] = (sums[c * dim + d] / sizes[c] as f64) as f32;
                    }
                }
            }
        }
        BinaryQuantizer::from_parts(metric, dim, means, seed)
    }

    /// Rebuilds a quantizer from its stored centres and rotation seed.
    pub fn from_parts(
        metric: MetricKind,
        dim: usize,
        centres: Vec<f32>,
        seed: u64,
    ) -> Result<BinaryQuantizer> {
        if dim == 0 || centres.is_empty() || !centres.len().is_multiple_of(dim) {
            return Err(Error::Corrupt(format!(
                "bit codes: {} centre floats for {dim} dimensions",
                centres.len()
            )));
        }
        if let Some(i) = centres.iter().position(|x| !x.is_finite()) {
            return Err(Error::Corrupt(format!(
                "bit codes: centre float {i} is {}",
                centres[i]
            )));
        }
        let rotation = Rotation::new(dim, seed);
        let count = centres.len() / dim;
        let padded = rotation.output_dim();
        let mut rotated = vec![0.0; padded];
        let centre_tables = centres
            .chunks_exact(dim)
            .map(|c| {
                rotation.apply(c, &mut rotated);
                CentreTable::of(&rotated)
            })
            .collect();
        let mut centre_l2 = vec![0.0; count * count];
        let mut centre_dot = vec![0.0; count * count];
        for (a, ca) in centres.chunks_exact(dim).enumerate() {
            for (b, cb) in centres.chunks_exact(dim).enumerate() {
                centre_l2[a * count + b] = l2sq(ca, cb);
                centre_dot[a * count + b] = ca.iter().zip(cb).map(|(x, y)| x * y).sum();
            }
        }
        Ok(BinaryQuantizer {
            inner: Arc::new(Inner {
                metric,
                dim,
                centres,
                rotation,
                seed,
                centre_tables,
                centre_l2,
                centre_dot,
                cosines: (0..=padded)
                    .map(|h| (std::f32::consts::PI * h as f32 / padded as f32).cos())
                    .collect(),
            }),
        })
    }

    /// Dimensions of the vectors (before padding).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The centres (row-major) and the rotation's seed (what `from_parts` takes).
    pub fn parts(&self) -> (&[f32], u64) {
        (&self.centres, self.seed)
    }

    /// Bytes of one code.
    pub fn code_bytes(&self) -> usize {
        self.rotation.output_dim() / 8 + FACTOR_BYTES
    }

    /// Writes the code of `v` (stored form) into `out` (`code_bytes()` long).
    pub fn encode(&self, v: &[f32], out: &mut [u8]) {
        assert_eq!(v.len(), self.dim, "bit code input length");
        let c = nearest(&self.centres, self.dim, v);
        let centre = &self.centres[c * self.dim..(c + 1) * self.dim];
        let residual: Vec<f32> = v.iter().zip(centre).map(|(x, c)| x - c).collect();
        let mut rotated = vec![0.0; self.rotation.output_dim()];
        self.rotation.apply(&residual, &mut rotated);
        self.write_code(c, &rotated, out);
    }

    /// [`encode`](Self::encode) of the vector `query` was prepared from, reusing its rotation
    /// and centre terms (R(x - c) = Rx - Rc): an insert prepares its vector as a query anyway,
    /// and with 128 centres encoding from scratch cost as much again.
    pub fn encode_prepared(&self, query: &BinaryQuery, out: &mut [u8]) {
        let count = self.centres.len() / self.dim;
        // |x - c|^2 up to a term common to every centre.
        let gap = |c: usize| match self.metric {
            MetricKind::L2sq | MetricKind::Cosine => query.constants[c],
            MetricKind::Ip => self.centre_dot[c * count + c] - 2.0 * query.constants[c],
        };
        let c = (0..count)
            .min_by(|&a, &b| gap(a).total_cmp(&gap(b)))
            .unwrap_or(0);
        let rotated: Vec<f32> = query
            .table
            .y
            .iter()
            .zip(&self.centre_tables[c].y)
            .map(|(q, c)| q - c)
            .collect();
        self.write_code(c, &rotated, out);
    }

    /// Writes the code of a vector whose nearest centre is `c` and rotated offset from it
    /// `rotated` (padded length).
    fn write_code(&self, c: usize, rotated: &[f32], out: &mut [u8]) {
        assert_eq!(out.len(), self.code_bytes(), "bit code length");
        // The rotation keeps lengths: |R(x - c)| = |x - c|.
        let norm = rotated.iter().map(|x| x * x).sum::<f32>().sqrt();
        let bits = self.rotation.output_dim() / 8;
        out[..bits].fill(0);
        let mut abs_sum = 0.0f32;
        for (i, &x) in rotated.iter().enumerate() {
            if x > 0.0 {
                out[i / 8] |= 1 << (i % 8);
            }
            abs_sum += x.abs();
        }
        // <ō, o> = sum|o_i| / sqrt(D) with o = rotated / norm; 1 for x = c (then unused).
        let padded = self.rotation.output_dim() as f32;
        let agreement = if norm > 0.0 {
            abs_sum / norm / padded.sqrt()
        } else {
            1.0
        };
        let own = self.centre_tables[c].inner(&out[..bits]);
        out[bits..bits + 4].copy_from_slice(&norm.to_le_bytes());
        out[bits + 4..bits + 8].copy_from_slice(&agreement.to_le_bytes());
        out[bits + 8..bits + 12].copy_from_slice(&own.to_le_bytes());
        out[bits + 12..bits + 14].copy_from_slice(&(c as u16).to_le_bytes());
    }

    /// Prepares `query` (stored form) for distance estimates to codes.
    pub fn prepare(&self, query: &[f32]) -> BinaryQuery {
        assert_eq!(query.len(), self.dim, "bit query length");
        // The rotation is linear, R(q - c) = Rq - Rc: one rotation of q serves every centre, and
        // each code carries its centre's term. Rotating q - c per centre made a bit search 5x
        // slower than a float32 one.
        let mut y = vec![0.0; self.rotation.output_dim()];
        self.rotation.apply(query, &mut y);
        let constants = self
            .centres
            .chunks_exact(self.dim)
            .map(|c| match self.metric {
                MetricKind::L2sq | MetricKind::Cosine => l2sq(query, c),
                MetricKind::Ip => query.iter().zip(c).map(|(q, c)| q * c).sum(),
            })
            .collect();
        BinaryQuery {
            quantizer: self.clone(),
            table: CentreTable::of(&y),
            constants,
        }
    }

    /// The parts of a code.
    fn split<'c>(&self, code: &'c [u8]) -> Parts<'c> {
        let bits = self.rotation.output_dim() / 8;
        assert_eq!(code.len(), bits + FACTOR_BYTES, "bit code length");
        let f32_at = |at: usize| f32::from_le_bytes(code[at..at + 4].try_into().unwrap());
        Parts {
            bits: &code[..bits],
            norm: f32_at(bits),
            agreement: f32_at(bits + 4),
            own: f32_at(bits + 8),
            centre: u16::from_le_bytes(code[bits + 12..bits + 14].try_into().unwrap()) as usize,
        }
    }

    /// Estimated distance between the vectors two codes stand for (for choosing neighbours).
    /// With x = c + n u (u a unit vector): the angle between u_a and u_b from the share of
    /// differing bits (a random rotation makes the signs disagree with probability angle / pi),
    /// and <c, u> for either centre by the query estimator <Rc, ō> / <ō, o>.
    pub fn distance_between(&self, a: &[u8], b: &[u8]) -> f32 {
        let (a, b) = (self.split(a), self.split(b));
        let count = self.centres.len() / self.dim;
        if a.centre >= count || b.centre >= count {
            return f32::INFINITY; // a centre this quantizer does not have: never near
        }
        let differing: u32 = a
            .bits
            .iter()
            .zip(b.bits)
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
        let cos = self.cosines[(differing as usize).min(self.cosines.len() - 1)];
        let scale = 1.0 / (self.rotation.output_dim() as f32).sqrt();
        // <c_j, u> of a code for the other code's centre j (its own centre's is stored).
        let across = |j: usize, code: &Parts| {
            self.centre_tables[j].inner(code.bits) * scale / code.agreement
        };
        let pair = a.centre * count + b.centre;
        match self.metric {
            MetricKind::L2sq | MetricKind::Cosine => {
                let (na, nb) = (a.norm, b.norm);
                let mut d = na * na + nb * nb - 2.0 * na * nb * cos;
                if a.centre != b.centre {
                    let gap_a = a.own * scale / a.agreement - across(b.centre, &a);
                    let gap_b = across(a.centre, &b) - b.own * scale / b.agreement;
                    d += self.centre_l2[pair] + 2.0 * na * gap_a - 2.0 * nb * gap_b;
                }
                let d = d.max(0.0);
                if self.metric == MetricKind::Cosine {
                    0.5 * d
                } else {
                    d
                }
            }
            MetricKind::Ip => {
                let dot = self.centre_dot[pair]
                    + a.norm * across(b.centre, &a)
                    + b.norm * across(a.centre, &b)
                    + a.norm * b.norm * cos;
                -dot
            }
        }
    }

    /// The vector a code stands for, as well as one bit per dimension tells: c + |x - c| <ō, o>
    /// R^-1 ō (the part of o along ō).
    pub fn decode(&self, code: &[u8], out: &mut [f32]) {
        let Parts {
            bits,
            norm,
            agreement,
            centre: c,
            ..
        } = self.split(code);
        assert_eq!(out.len(), self.dim, "bit decode output length");
        let padded = self.rotation.output_dim();
        let value = norm * agreement / (padded as f32).sqrt();
        let signs: Vec<f32> = (0..padded)
            .map(|i| {
                if bits[i / 8] >> (i % 8) & 1 == 1 {
                    value
                } else {
                    -value
                }
            })
            .collect();
        self.rotation.invert(&signs, out);
        if let Some(centre) = self.centres.chunks_exact(self.dim).nth(c) {
            for (o, x) in out.iter_mut().zip(centre) {
                *o += x;
            }
        }
    }
}

impl CentreTable {
    /// The table of a rotated vector y (padded length).
    fn of(y: &[f32]) -> CentreTable {
        CentreTable {
            y: y.to_vec(),
            total: y.iter().sum(),
        }
    }

    /// sqrt(D) <ō, y> for the code `bits`: 2 * (sum of y over set bits) - sum of y.
    #[inline]
    fn inner(&self, bits: &[u8]) -> f32 {
        2.0 * CodeKernels::Best.masked_sum(&self.y, bits) - self.total
    }
}

/// `count` seeded k-means++ starting centres from the rows of `sample`.
fn kmeans_plus_plus(sample: &[f32], dim: usize, count: usize, seed: u64) -> Vec<f32> {
    let rows = sample.len() / dim;
    let row = |i: usize| &sample[i * dim..(i + 1) * dim];
    // A seeded draw in [0, 1).
    let draw = |round: u64| (mix64(seed ^ mix64(round)) >> 11) as f64 / (1u64 << 53) as f64;
    let mut means = Vec::with_capacity(count * dim);
    let first = (draw(0) * rows as f64) as usize % rows;
    means.extend_from_slice(row(first));
    let mut nearest: Vec<f64> = (0..rows).map(|i| l2sq(row(i), row(first)) as f64).collect();
    for round in 1..count {
        let total: f64 = nearest.iter().sum();
        let chosen = if total > 0.0 {
            let mut target = draw(round as u64) * total;
            let mut chosen = rows - 1;
            for (i, &d) in nearest.iter().enumerate() {
                if target < d {
                    chosen = i;
                    break;
                }
                target -= d;
            }
            chosen
        } else {
            round % rows // every row is a centre already: repeat one (it stays empty)
        };
        let centre = row(chosen);
        for (i, d) in nearest.iter_mut().enumerate() {
            *d = d.min(l2sq(row(i), centre) as f64);
        }
        means.extend_from_slice(centre);
    }
    means
}

/// Index of the centre nearest to `v`.
fn nearest(centres: &[f32], dim: usize, v: &[f32]) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, centre) in centres.chunks_exact(dim).enumerate() {
        let d = l2sq(centre, v);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// A code's parts.
struct Parts<'c> {
    bits: &'c [u8],
    /// |x - c|.
    norm: f32,
    /// <ō, o>.
    agreement: f32,
    /// sqrt(D) <ō, Rc> for the code's own centre c.
    own: f32,
    centre: usize,
}

/// A rotated vector's view for inner products with codes.
#[derive(Clone, Debug)]
struct CentreTable {
    /// The rotated vector.
    y: Vec<f32>,
    /// Sum of y.
    total: f32,
}

/// A query prepared for distance estimates to `bit` codes (one thread's).
#[derive(Clone, Debug)]
pub struct BinaryQuery {
    quantizer: BinaryQuantizer,
    /// The table of the rotated query.
    table: CentreTable,
    /// Per centre: |q - c|^2 (L2, cosine) or <q, c> (inner product).
    constants: Vec<f32>,
}

impl BinaryQuery {
    /// Estimated distance from the query to the vector `code` stands for.
    pub fn distance(&self, code: &[u8]) -> f32 {
        let q = &self.quantizer;
        let code = q.split(code);
        let Some(&constant) = self.constants.get(code.centre) else {
            return f32::INFINITY; // a centre this quantizer does not have: never near
        };
        let scale = 1.0 / (q.rotation.output_dim() as f32).sqrt();
        // sqrt(D) <ō, y> with y = R(q - c) = Rq - Rc (L2, cosine; Rc's term is in the code) or
        // y = Rq (inner product).
        let inner = match q.metric {
            MetricKind::L2sq | MetricKind::Cosine => self.table.inner(code.bits) - code.own,
            MetricKind::Ip => self.table.inner(code.bits),
        };
        // <x - c, y> ≈ |x - c| * <ō, y> / <ō, o>.
        let norm = code.norm;
        let estimate = norm * inner * scale / code.agreement;
        match q.metric {
            MetricKind::L2sq => norm * norm + constant - 2.0 * estimate,
            MetricKind::Ip => -(constant + estimate),
            MetricKind::Cosine => 0.5 * (norm * norm + constant - 2.0 * estimate),
        }
    }
}
