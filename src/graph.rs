//! Node storage and the index handle.
//!
//! Nodes live in chunks that never move (chunk k holds `CHUNK0 << k` slots), so concurrent
//! inserts can grow the index while searches read it. A node's record holds, contiguously,
//! its flags word (lock bit, deleted/free bits, level), its layer-0 neighbour list, its label,
//! a pointer to its upper-layer lists and its vector. Neighbour lists are arrays of `AtomicU32`
//! (count first): writers hold the node's lock bit, readers take no lock.

use crate::distance::{DistanceKernel, MetricKind};
use crate::error::{Error, Result};
use crate::hash::{mix64, LabelHash};
use crate::params::Params;
use std::alloc::Layout;
use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Internal slot number of a node (labels are the caller's ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// "No node" marker in links and the entry point.
pub(crate) const NONE: u32 = u32::MAX;
/// Highest layer a node can reach; with M ≥ 2 reaching it is practically impossible.
pub(crate) const MAX_LEVEL: usize = 15;
/// Most slots an index can hold.
pub const MAX_SLOTS: u64 = (u32::MAX - 1) as u64;

const CHUNK0: usize = 1024;
const CHUNKS: usize = 23; // CHUNK0 * (2^23 - 1) > u32::MAX
const LOCKED: u32 = 1;
pub(crate) const DELETED: u32 = 2;
pub(crate) const FREE: u32 = 4;
/// Deleted for new readers, but still a candidate for older snapshots until purged (see
/// [`Hnsw::retire`]). Never set together with DELETED or FREE.
pub(crate) const RETIRED: u32 = 8;
const LEVEL_SHIFT: u32 = 8;
const RECORD_ALIGN: usize = 64;
/// Most cache lines of a vector to prefetch; the hardware prefetcher streams the rest.
const PREFETCH_LINES: usize = 8;

/// Chunk holding `id`, and the position inside it.
#[inline(always)]
fn chunk_of(id: u32) -> (usize, usize) {
    let t = id as usize / CHUNK0 + 1;
    let k = (usize::BITS - 1 - t.leading_zeros()) as usize;
    (k, id as usize - CHUNK0 * ((1 << k) - 1))
}

/// Byte offsets inside a node record.
#[derive(Clone, Copy)]
struct RecordLayout {
    size: usize,
    label: usize,
    upper: usize,
    vector: usize,
}

impl RecordLayout {
    fn new(dim: usize, m0: usize) -> RecordLayout {
        // flags (4) + layer-0 count (4) + m0 links, then label, upper pointer, vector.
        let label = (8 + 4 * m0).next_multiple_of(8);
        let upper = label + 8;
        // Vectors start on a cache line so a 512-byte vector touches 8 lines, not 9.
        let vector = (upper + 8).next_multiple_of(64);
        let size = (vector + 4 * dim).next_multiple_of(RECORD_ALIGN);
        RecordLayout {
            size,
            label,
            upper,
            vector,
        }
    }
}

/// Chunked, growable, never-moving storage of node records.
pub(crate) struct NodeStore {
    dim: usize,
    m: usize,
    m0: usize,
    layout: RecordLayout,
    chunks: [AtomicPtr<u8>; CHUNKS],
    grow: Mutex<()>,
    slots: AtomicU32,
    upper_bytes: AtomicUsize,
}

// SAFETY: all shared mutation goes through atomics or happens on slots no other thread can reach.
unsafe impl Send for NodeStore {}
unsafe impl Sync for NodeStore {}

impl NodeStore {
    fn new(dim: usize, m: usize, m0: usize) -> NodeStore {
        NodeStore {
            dim,
            m,
            m0,
            layout: RecordLayout::new(dim, m0),
            chunks: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            grow: Mutex::new(()),
            slots: AtomicU32::new(0),
            upper_bytes: AtomicUsize::new(0),
        }
    }

    fn chunk_layout(&self, k: usize) -> Layout {
        Layout::from_size_align((CHUNK0 << k) * self.layout.size, RECORD_ALIGN)
            .expect("chunk layout")
    }

    /// Number of slots handed out so far (live, deleted and free).
    #[inline]
    pub(crate) fn slots(&self) -> usize {
        self.slots.load(Ordering::Acquire) as usize
    }

    /// Hands out a fresh slot at the end, allocating its chunk if needed.
    fn push_slot(&self) -> Result<u32> {
        let id = self.slots.fetch_add(1, Ordering::AcqRel);
        if id as u64 >= MAX_SLOTS {
            self.slots.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Capacity { max: MAX_SLOTS });
        }
        let (k, _) = chunk_of(id);
        if self.chunks[k].load(Ordering::Acquire).is_null() {
            let _guard = self.grow.lock().unwrap_or_else(|e| e.into_inner());
            if self.chunks[k].load(Ordering::Acquire).is_null() {
                let ptr = crate::chunk_memory::alloc_chunk(self.chunk_layout(k));
                if ptr.is_null() {
                    std::alloc::handle_alloc_error(self.chunk_layout(k));
                }
                self.chunks[k].store(ptr, Ordering::Release);
            }
        }
        Ok(id)
    }

    #[inline(always)]
    fn record(&self, id: u32) -> *mut u8 {
        let (k, off) = chunk_of(id);
        let base = self.chunks[k].load(Ordering::Acquire);
        debug_assert!(!base.is_null(), "slot {id} has no chunk");
        // SAFETY: `off` is inside chunk k, which was allocated before the slot was handed out.
        unsafe { base.add(off * self.layout.size) }
    }

    #[inline(always)]
    pub(crate) fn flags(&self, id: u32) -> &AtomicU32 {
        // SAFETY: offset 0 of an aligned record, valid for the store's lifetime.
        unsafe { &*(self.record(id) as *const AtomicU32) }
    }

    /// Layer of the node's highest neighbour list.
    #[inline(always)]
    pub(crate) fn level(&self, id: u32) -> usize {
        ((self.flags(id).load(Ordering::Acquire) >> LEVEL_SHIFT) & 0xff) as usize
    }

    /// True when any of the `mask` state bits is set.
    #[inline(always)]
    pub(crate) fn has_state(&self, id: u32, mask: u32) -> bool {
        self.flags(id).load(Ordering::Acquire) & mask != 0
    }

    /// Count word followed by the neighbour slots of layer `level`.
    #[inline(always)]
    pub(crate) fn links(&self, id: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            // SAFETY: the count word and m0 links follow the flags word.
            unsafe {
                std::slice::from_raw_parts(self.record(id).add(4) as *const AtomicU32, 1 + self.m0)
            }
        } else {
            let upper = self.upper_ptr(id).load(Ordering::Acquire);
            debug_assert!(!upper.is_null() && level <= self.level(id));
            // SAFETY: the upper block holds `level` lists of 1 + m words.
            unsafe { std::slice::from_raw_parts(upper.add((level - 1) * (1 + self.m)), 1 + self.m) }
        }
    }

    #[inline(always)]
    fn upper_ptr(&self, id: u32) -> &AtomicPtr<AtomicU32> {
        // SAFETY: 8-aligned field inside the record.
        unsafe { &*(self.record(id).add(self.layout.upper) as *const AtomicPtr<AtomicU32>) }
    }

    #[inline(always)]
    fn label_word(&self, id: u32) -> &AtomicU64 {
        // SAFETY: 8-aligned field inside the record.
        unsafe { &*(self.record(id).add(self.layout.label) as *const AtomicU64) }
    }

    #[inline(always)]
    pub(crate) fn label(&self, id: u32) -> u64 {
        self.label_word(id).load(Ordering::Relaxed)
    }

    /// The node's stored vector.
    #[inline(always)]
    pub(crate) fn vector(&self, id: u32) -> &[f32] {
        // SAFETY: written once before the node became reachable (see `init`).
        unsafe {
            std::slice::from_raw_parts(
                self.record(id).add(self.layout.vector) as *const f32,
                self.dim,
            )
        }
    }

    /// Hints the CPU to load a node's vector (all of its cache lines, up to `PREFETCH_LINES`).
    #[inline(always)]
    pub(crate) fn prefetch(&self, id: u32) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetch never faults; the address is inside an allocated chunk.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = self.record(id).add(self.layout.vector) as *const i8;
            let lines = (self.dim * 4).div_ceil(64).min(PREFETCH_LINES);
            for line in 0..lines {
                _mm_prefetch(p.add(64 * line), _MM_HINT_T0);
            }
        }
    }

    /// Hints the CPU to load a node's level-0 link list (count word and links).
    #[inline(always)]
    pub(crate) fn prefetch_links(&self, id: u32) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetch never faults; the address is inside an allocated chunk.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = self.record(id) as *const i8;
            for line in 0..(4 + 4 * (1 + self.m0)).div_ceil(64) {
                _mm_prefetch(p.add(64 * line), _MM_HINT_T0);
            }
        }
    }

    /// Spins until this thread owns the node's lock bit.
    #[inline]
    pub(crate) fn lock(&self, id: u32) -> NodeGuard<'_> {
        let flags = self.flags(id);
        let mut spins = 0u32;
        while flags.fetch_or(LOCKED, Ordering::Acquire) & LOCKED != 0 {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        NodeGuard { flags }
    }

    /// Fills a slot that no other thread can reach: vector, label, level, empty lists.
    ///
    /// # Safety
    /// No other thread may access slot `id` until it is published through a link or the
    /// entry point (which happens with release ordering after this returns).
    unsafe fn init(&self, id: u32, label: u64, level: usize, vector: &[f32]) {
        let rec = self.record(id);
        std::ptr::copy_nonoverlapping(
            vector.as_ptr(),
            rec.add(self.layout.vector) as *mut f32,
            self.dim,
        );
        self.label_word(id).store(label, Ordering::Relaxed);
        self.links(id, 0)[0].store(0, Ordering::Relaxed);
        self.free_upper(id);
        if level > 0 {
            let words: Box<[AtomicU32]> = (0..level * (1 + self.m))
                .map(|_| AtomicU32::new(0))
                .collect();
            self.upper_bytes
                .fetch_add(words.len() * 4, Ordering::Relaxed);
            self.upper_ptr(id)
                .store(Box::into_raw(words) as *mut AtomicU32, Ordering::Release);
        }
        self.flags(id)
            .store((level as u32) << LEVEL_SHIFT, Ordering::Release);
    }

    /// Releases a slot's upper-layer lists (the level in its flags gives their size).
    fn free_upper(&self, id: u32) {
        let ptr = self
            .upper_ptr(id)
            .swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !ptr.is_null() {
            let len = self.level(id) * (1 + self.m);
            self.upper_bytes.fetch_sub(len * 4, Ordering::Relaxed);
            // SAFETY: allocated in `init` as a boxed slice of exactly this length.
            unsafe { drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len))) };
        }
    }

    /// Turns a deleted node into a free slot (exclusive access required by the caller).
    pub(crate) fn release(&mut self, id: u32) {
        self.free_upper(id);
        self.links(id, 0)[0].store(0, Ordering::Relaxed);
        self.label_word(id).store(0, Ordering::Relaxed);
        self.flags(id).store(FREE, Ordering::Release);
    }

    /// Bytes held by chunks and upper-layer lists.
    pub(crate) fn memory_bytes(&self) -> usize {
        let chunks: usize = (0..CHUNKS)
            .filter(|&k| !self.chunks[k].load(Ordering::Acquire).is_null())
            .map(|k| self.chunk_layout(k).size())
            .sum();
        chunks + self.upper_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for NodeStore {
    fn drop(&mut self) {
        for id in 0..self.slots() as u32 {
            if self.flags(id).load(Ordering::Relaxed) & FREE == 0 {
                self.free_upper(id);
            }
        }
        for k in 0..CHUNKS {
            let ptr = self.chunks[k].load(Ordering::Acquire);
            if !ptr.is_null() {
                // SAFETY: allocated in `push_slot` with this layout.
                unsafe { crate::chunk_memory::free_chunk(ptr, self.chunk_layout(k)) };
            }
        }
    }
}

/// Holds a node's lock bit; releases it on drop.
pub(crate) struct NodeGuard<'a> {
    flags: &'a AtomicU32,
}

impl Drop for NodeGuard<'_> {
    fn drop(&mut self) {
        self.flags.fetch_and(!LOCKED, Ordering::Release);
    }
}

const LABEL_SHARDS: usize = 64;

/// Label → slot map, sharded so parallel inserts rarely contend.
struct LabelMap {
    shards: Vec<Mutex<HashMap<u64, u32, LabelHash>>>,
}

impl LabelMap {
    fn new() -> LabelMap {
        LabelMap {
            shards: (0..LABEL_SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(LabelHash)))
                .collect(),
        }
    }
    fn shard(&self, label: u64) -> std::sync::MutexGuard<'_, HashMap<u64, u32, LabelHash>> {
        let i = (mix64(label) >> 58) as usize % LABEL_SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }
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
}

pub(crate) const EMPTY_ENTRY: u64 = u64::MAX;

impl Hnsw {
    /// An empty index.
    pub fn new(params: Params) -> Result<Hnsw> {
        params.validate()?;
        Ok(Hnsw {
            dist: params.metric.kernel(),
            store: NodeStore::new(params.dim, params.m, params.m0),
            params,
            entry: AtomicU64::new(EMPTY_ENTRY),
            entry_lock: Mutex::new(()),
            labels: LabelMap::new(),
            free: Mutex::new(Vec::new()),
            live: AtomicUsize::new(0),
            deleted: AtomicUsize::new(0),
            retired: AtomicUsize::new(0),
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
        let labels = (self.len() + self.retired_count()) * 24 + LABEL_SHARDS * 64;
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

    /// The stored (for cosine: normalized) vector of a searchable or retired label.
    pub fn vector(&self, label: u64) -> Option<Vec<f32>> {
        let id = self.slot_of(label)?;
        Some(self.store.vector(id).to_vec())
    }

    /// Slot of a claimed (searchable or retired) label.
    pub(crate) fn slot_of(&self, label: u64) -> Option<u32> {
        self.labels.shard(label).get(&label).copied()
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
    pub(crate) fn allocate(&self, label: u64, level: usize, vector: &[f32]) -> Result<u32> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let id = match reused {
            Some(id) => id,
            None => self.store.push_slot()?,
        };
        // SAFETY: the slot is fresh or free: no link and no entry point refers to it.
        unsafe { self.store.init(id, label, level, vector) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_mapping_is_contiguous() {
        let mut expected = (0usize, 0usize);
        for id in 0..(CHUNK0 * 40) as u32 {
            assert_eq!(chunk_of(id), expected, "id {id}");
            expected.1 += 1;
            if expected.1 == CHUNK0 << expected.0 {
                expected = (expected.0 + 1, 0);
            }
        }
        let (k, _) = chunk_of(u32::MAX - 1);
        assert!(k < CHUNKS);
    }

    #[test]
    fn records_are_aligned_for_simd_and_atomics() {
        for (dim, m0) in [(1, 4), (3, 32), (128, 32), (384, 48), (1000, 2048)] {
            let l = RecordLayout::new(dim, m0);
            assert!(l.size.is_multiple_of(RECORD_ALIGN));
            assert!(l.vector.is_multiple_of(64));
            assert!(l.label >= 8 + 4 * m0 && l.label.is_multiple_of(8));
            assert!(l.vector + 4 * dim <= l.size);
        }
    }
}
