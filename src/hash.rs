//! Integer hashing: level assignment and label-map sharding.

use std::hash::{BuildHasher, Hasher};

/// SplitMix64 finalizer: a strong 64-bit mix.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hasher for u64 keys that are already well spread after `mix64`.
#[derive(Default, Clone, Copy)]
pub(crate) struct LabelHasher(u64);

impl Hasher for LabelHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix64(self.0 ^ b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = mix64(v);
    }
}

/// Builds [`LabelHasher`]s.
#[derive(Default, Clone, Copy)]
pub(crate) struct LabelHash;

impl BuildHasher for LabelHash {
    type Hasher = LabelHasher;
    fn build_hasher(&self) -> LabelHasher {
        LabelHasher(0)
    }
}
