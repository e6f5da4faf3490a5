//! Label → slot map, sharded so parallel inserts rarely contend.

use crate::hash::mix64;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard};

/// Shards of the map (a power of two: the top bits of the mixed label pick one).
pub(super) const LABEL_SHARDS: usize = 64;
/// Bytes a label costs in the map (key, slot and hash-table overhead), as memory reports count it.
pub(super) const LABEL_BYTES: usize = 24;

/// Label → slot map of claimed (live or retired) labels.
pub(super) struct LabelMap {
    shards: Vec<Mutex<HashMap<u64, u32, LabelHash>>>,
}

impl LabelMap {
    /// An empty map.
    pub(super) fn new() -> LabelMap {
        LabelMap {
            shards: (0..LABEL_SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(LabelHash)))
                .collect(),
        }
    }
    /// The locked shard holding `label`.
    pub(super) fn shard(&self, label: u64) -> MutexGuard<'_, HashMap<u64, u32, LabelHash>> {
        let i = (mix64(label) >> 58) as usize % LABEL_SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }
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
