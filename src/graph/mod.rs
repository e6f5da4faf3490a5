//! The index handle: parameters, node storage, the label map, the entry point and the counts of
//! nodes in each state. A row's node is live (searchable), retired (hidden from new readers,
//! still a candidate for older snapshots), deleted (a tombstone other nodes still route
//! through) or free (a slot waiting for reuse); see `maintenance` for the transitions.

mod chunk_memory;
mod codec;
mod labels;
mod nodes;

pub use codec::Query;
pub(crate) use codec::{Codec, BIT_CENTRES};
pub use nodes::{NodeId, MAX_SLOTS};
pub(crate) use nodes::{NodeStore, COPY, DELETED, FREE, HAS_COPIES, MAX_LEVEL, NONE, RETIRED};

use crate::distance::{DistanceKernel, MetricKind};
use crate::error::{Error, Result};
use crate::hash::mix64;
use crate::maintenance::RetirementLog;
use crate::params::Params;
use crate::quantize::Quantization;
pub(crate) use labels::LabelHash;
use labels::{LabelMap, LABEL_BYTES, LABEL_SHARDS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

/// Bytes [`Hnsw::memory_bytes`] grows by, on average, per row inserted with `params`.
pub(crate) fn bytes_per_row(params: &Params) -> usize {
    nodes::bytes_per_node(
        params.quantization.code_bytes(params.dim),
        params.m,
        params.m0,
    ) + LABEL_BYTES
}

/// An HNSW index over `f32` vectors with `u64` labels. Inserts, deletes and searches may run
/// from many threads at once; compaction and serialization need exclusive access.
pub struct Hnsw {
    pub(crate) params: Params,
    pub(crate) dist: DistanceKernel,
    pub(crate) store: NodeStore,
    /// `(level << 32) | node`, or `EMPTY_ENTRY`.
    entry: AtomicU64,
    pub(crate) entry_lock: Mutex<()>,
    labels: LabelMap,
    free: Mutex<Vec<u32>>,
    live: AtomicUsize,
    deleted: AtomicUsize,
    retired: AtomicUsize,
    /// Nodes inserted since the last relink (see `Hnsw::relink_if_due`).
    pub(crate) inserted_since_relink: AtomicUsize,
    retirements: Mutex<RetirementLog>,
    /// The copies of each node that has some (see `COPY`): identical vectors are one graph node.
    pub(crate) copies: RwLock<HashMap<u32, Vec<u32>>>,
    /// Copies in `copies`: searches skip looking for them while there are none.
    pub(crate) copy_count: AtomicUsize,
    /// How vectors are stored; coded indexes learn it from their first batch.
    codec: OnceLock<Codec>,
    /// Vector components clamped to the learned code ranges.
    clamped: AtomicU64,
}

pub(crate) const EMPTY_ENTRY: u64 = u64::MAX;

impl Hnsw {
    /// An empty index.
    pub fn new(params: Params) -> Result<Hnsw> {
        params.validate()?;
        let codec = OnceLock::new();
        if params.quantization == Quantization::F32 {
            let _ = codec.set(Codec::F32);
        }
        Ok(Hnsw {
            dist: params.metric.kernel(),
            store: NodeStore::new(
                params.dim,
                params.quantization.code_bytes(params.dim),
                params.m,
                params.m0,
            ),
            params,
            entry: AtomicU64::new(EMPTY_ENTRY),
            entry_lock: Mutex::new(()),
            labels: LabelMap::new(),
            free: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            deleted: AtomicUsize::new(0),
            retired: AtomicUsize::new(0),
            inserted_since_relink: AtomicUsize::new(0),
            retirements: Mutex::new(RetirementLog::new()),
            copies: RwLock::new(HashMap::new()),
            copy_count: AtomicUsize::new(0),
            codec,
            clamped: AtomicU64::new(0),
        })
    }

    /// The parameters the index was built with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.params.dim
    }

    /// Metric.
    pub fn metric(&self) -> MetricKind {
        self.params.metric
    }

    /// Number of searchable (inserted, not deleted and not retired) vectors.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// True when nothing is searchable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Deleted nodes still occupying slots (reclaimed by [`Hnsw::compact`]).
    pub fn deleted_count(&self) -> usize {
        self.deleted.load(Ordering::Relaxed)
    }

    /// Retired nodes: deleted for new readers, still candidates for older snapshots.
    pub fn retired_count(&self) -> usize {
        self.retired.load(Ordering::Relaxed)
    }

    /// Slots in use or free for reuse.
    pub fn slot_count(&self) -> usize {
        self.store.slots()
    }

    /// Number of layers (0 when empty).
    pub fn layer_count(&self) -> usize {
        match self.entry() {
            Some((_, level)) => level + 1,
            None => 0,
        }
    }

    /// Bytes of memory the index holds.
    pub fn memory_bytes(&self) -> usize {
        let labels = (self.len() + self.retired_count()) * LABEL_BYTES + LABEL_SHARDS * 64;
        let free = self
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .capacity()
            * 4;
        std::mem::size_of::<Hnsw>() + self.store.memory_bytes() + labels + free
    }

    /// True when `label` is searchable (retired labels are not).
    pub fn contains(&self, label: u64) -> bool {
        self.slot_of(label)
            .is_some_and(|id| !self.store.has_state(id, RETIRED))
    }

    /// True when `label` is retired: hidden from searches, still a candidate for old snapshots.
    pub fn is_retired(&self, label: u64) -> bool {
        self.slot_of(label)
            .is_some_and(|id| self.store.has_state(id, RETIRED))
    }

    /// The stored (for cosine: normalized; for codes: decoded) vector of a searchable or
    /// retired label.
    pub fn vector(&self, label: u64) -> Option<Vec<f32>> {
        let id = self.slot_of(label)?;
        let mut out = Vec::new();
        self.node_floats(id, &mut out);
        Some(out)
    }

    /// True when the stored vectors are the inserted ones bit for bit (float32 under a metric that
    /// keeps vectors as given: l2sq, ip), so a caller may read them instead of its own copy.
    pub fn stores_input_vectors(&self) -> bool {
        self.params.quantization == Quantization::F32 && self.params.metric != MetricKind::Cosine
    }

    /// Copies the inserted vectors of `labels` (searchable or retired) into `out`, row-major;
    /// false (`out` then partly written) unless [`Hnsw::stores_input_vectors`] and every label is
    /// held.
    pub fn copy_input_vectors(&self, labels: &[u64], out: &mut [f32]) -> bool {
        let dim = self.params.dim;
        if !self.stores_input_vectors() || out.len() != labels.len() * dim {
            return false;
        }
        for (&label, row) in labels.iter().zip(out.chunks_exact_mut(dim)) {
            let Some(id) = self.slot_of(label) else {
                return false;
            };
            row.copy_from_slice(self.store.vector(id));
        }
        true
    }

    /// Slot of a claimed (searchable or retired) label.
    pub(crate) fn slot_of(&self, label: u64) -> Option<u32> {
        self.labels.shard(label).get(&label).copied()
    }

    /// The log of retired labels waiting for old snapshots to end.
    pub(crate) fn retirements(&self) -> std::sync::MutexGuard<'_, RetirementLog> {
        self.retirements.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes slot `copy` (level 0, not linked yet) a copy of node `owner`: its only link is to
    /// the owner, and searches return it beside the owner.
    pub(crate) fn add_copy(&self, owner: u32, copy: u32) {
        let words = self.store.links(copy, 0);
        words[1].store(owner, Ordering::Relaxed);
        words[0].store(1, Ordering::Release);
        self.store.flags(copy).fetch_or(COPY, Ordering::AcqRel);
        self.copies
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(owner)
            .or_default()
            .push(copy);
        self.copy_count.fetch_add(1, Ordering::Relaxed);
        self.store
            .flags(owner)
            .fetch_or(HAS_COPIES, Ordering::AcqRel);
    }

    /// Appends the copies of `owner` to `out`.
    pub(crate) fn copies_of(&self, owner: u32, out: &mut Vec<u32>) {
        if let Some(list) = self
            .copies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&owner)
        {
            out.extend_from_slice(list);
        }
    }

    /// The copies of every owner (exclusive access: compaction).
    pub(crate) fn copies_mut(&mut self) -> &mut HashMap<u32, Vec<u32>> {
        self.copies.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// Current entry point and top layer.
    #[inline]
    pub(crate) fn entry(&self) -> Option<(u32, usize)> {
        let e = self.entry.load(Ordering::Acquire);
        (e != EMPTY_ENTRY).then_some((e as u32, (e >> 32) as usize))
    }

    pub(crate) fn set_entry(&self, entry: Option<(u32, usize)>) {
        let word = entry.map_or(EMPTY_ENTRY, |(id, level)| {
            ((level as u64) << 32) | id as u64
        });
        self.entry.store(word, Ordering::Release);
    }

    /// Deterministic level of a label: depends only on the seed and the label.
    pub(crate) fn level_for(&self, label: u64) -> usize {
        let h = mix64(self.params.seed ^ mix64(label));
        let u = ((h >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64); // (0, 1]
        ((-u.ln() * self.params.level_multiplier()) as usize).min(MAX_LEVEL)
    }

    /// Claims the label; fails if it is already searchable.
    pub(crate) fn claim_label(&self, label: u64, id: u32) -> Result<()> {
        let mut shard = self.labels.shard(label);
        if shard.contains_key(&label) {
            return Err(Error::DuplicateLabel(label));
        }
        shard.insert(label, id);
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Removes a label from the map (only if retired, when `only_retired`), returning its slot;
    /// the live and retired counts follow.
    pub(crate) fn unclaim_label(&self, label: u64, only_retired: bool) -> Option<u32> {
        let mut shard = self.labels.shard(label);
        let &id = shard.get(&label)?;
        if only_retired && !self.store.has_state(id, RETIRED) {
            return None;
        }
        shard.remove(&label);
        let was = self.store.flags(id).fetch_and(!RETIRED, Ordering::AcqRel);
        if was & RETIRED != 0 {
            self.retired.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
        Some(id)
    }

    /// Points a claimed label at another slot (compaction, with exclusive access).
    pub(crate) fn move_label(&self, label: u64, id: u32) {
        self.labels.shard(label).insert(label, id);
    }

    /// Moves a searchable label to the retired state; false if it is absent or already retired.
    pub(crate) fn retire_label(&self, label: u64) -> bool {
        let shard = self.labels.shard(label);
        let Some(&id) = shard.get(&label) else {
            return false;
        };
        let was = self.store.flags(id).fetch_or(RETIRED, Ordering::AcqRel);
        if was & RETIRED != 0 {
            return false;
        }
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.retired.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Takes a slot (reusing a reclaimed one first) and fills it.
    pub(crate) fn allocate(&self, label: u64, level: usize, code: &[u8]) -> Result<u32> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let id = match reused {
            Some(id) => id,
            None => self.store.push_slot()?,
        };
        // SAFETY: the slot is fresh or free: no link and no entry point refers to it.
        unsafe { self.store.init(id, label, level, code) };
        Ok(id)
    }

    pub(crate) fn note_deleted(&self, delta: isize) {
        if delta >= 0 {
            self.deleted.fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            self.deleted.fetch_sub((-delta) as usize, Ordering::Relaxed);
        }
    }

    /// Replaces the free list (compaction and deserialization own the index exclusively).
    pub(crate) fn set_free_list(&mut self, mut free: Vec<u32>) {
        // Pop from the end: hand out the lowest slot numbers first.
        free.sort_unstable_by(|a, b| b.cmp(a));
        *self.free.get_mut().unwrap_or_else(|e| e.into_inner()) = free;
    }

    /// The current free list.
    pub(crate) fn free_list(&self) -> Vec<u32> {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Validates a vector and writes its stored form into `out`.
    pub fn prepare_into(&self, vector: &[f32], out: &mut Vec<f32>) -> Result<()> {
        if vector.len() != self.params.dim {
            return Err(Error::DimensionMismatch {
                expected: self.params.dim,
                got: vector.len(),
            });
        }
        crate::distance::check_finite(vector)?;
        out.clear();
        out.extend_from_slice(vector);
        self.params.metric.metric().prepare(out)
    }
}
