//! A seeded random rotation that costs O(d log d): three rounds of random sign flips, each
//! followed by a normalized Walsh-Hadamard transform, on the vector zero-padded to a power of
//! two. It spreads a vector's energy evenly over the coordinates, which is what makes one sign
//! bit per coordinate an informative code.

use crate::hash::mix64;

/// Rounds of sign flips + Hadamard transform (three mix as well as a dense random rotation for
/// the estimator; fewer leave structured inputs partly unmixed).
const ROUNDS: usize = 3;

/// An orthogonal map from `dim` to `padded(dim)` dimensions.
#[derive(Clone, Debug)]
pub struct Rotation {
    dim: usize,
    padded: usize,
    /// ±1 per padded coordinate, round after round.
    signs: Vec<f32>,
}

impl Rotation {
    /// Dimensions after padding: the next power of two, at least 8 (whole bytes of bits).
    pub fn padded(dim: usize) -> usize {
        dim.next_power_of_two().max(8)
    }

    /// The rotation drawn from `seed` for `dim`-dimensional vectors.
    pub fn new(dim: usize, seed: u64) -> Rotation {
        let padded = Rotation::padded(dim);
        let signs = (0..ROUNDS * padded)
            .map(|i| {
                if mix64(seed ^ mix64(i as u64)) & 1 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        Rotation { dim, padded, signs }
    }

    /// Input dimensions.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Output dimensions.
    pub fn output_dim(&self) -> usize {
        self.padded
    }

    /// Writes the rotated `v` (`dim` floats) into `out` (`output_dim` floats).
    pub fn apply(&self, v: &[f32], out: &mut [f32]) {
        assert_eq!(v.len(), self.dim, "rotation input length");
        assert_eq!(out.len(), self.padded, "rotation output length");
        out[..self.dim].copy_from_slice(v);
        out[self.dim..].fill(0.0);
        let scale = 1.0 / (self.padded as f32).sqrt();
        for round in self.signs.chunks_exact(self.padded) {
            for (x, s) in out.iter_mut().zip(round) {
                *x *= s;
            }
            hadamard(out);
            for x in out.iter_mut() {
                *x *= scale;
            }
        }
    }
}

impl Rotation {
    /// The inverse: `y` (padded length) rotated back, its first `dim()` values into `out`.
    pub fn invert(&self, y: &[f32], out: &mut [f32]) {
        assert_eq!(y.len(), self.padded, "rotation inverse input length");
        assert_eq!(out.len(), self.dim, "rotation inverse output length");
        // Each round is H / sqrt(n) after the signs S: its inverse is S H / sqrt(n) (H is
        // symmetric and H H = n), the rounds in reverse order.
        let mut x = y.to_vec();
        let scale = 1.0 / (self.padded as f32).sqrt();
        for round in self.signs.chunks_exact(self.padded).rev() {
            hadamard(&mut x);
            for (v, s) in x.iter_mut().zip(round) {
                *v *= s * scale;
            }
        }
        out.copy_from_slice(&x[..self.dim]);
    }
}

/// In-place unnormalized Walsh-Hadamard transform of a power-of-two-long slice.
fn hadamard(x: &mut [f32]) {
    let n = x.len();
    let mut h = 1;
    while h < n {
        for block in x.chunks_exact_mut(2 * h) {
            let (a, b) = block.split_at_mut(h);
            for (u, v) in a.iter_mut().zip(b.iter_mut()) {
                let (s, d) = (*u + *v, *u - *v);
                *u = s;
                *v = d;
            }
        }
        h *= 2;
    }
}
