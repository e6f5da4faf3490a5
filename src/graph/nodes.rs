//! Node records: chunked storage that never moves, so concurrent inserts can grow the index while
//! searches read it (chunk k holds `CHUNK0 << k` slots). A node's record holds, contiguously, its
//! flags word (lock bit, state bits, level), its layer-0 neighbour list, its label, a pointer to
//! its upper-layer lists and its vector. Neighbour lists are arrays of `AtomicU32` (count first):
//! writers hold the node's lock bit, readers take no lock.

use crate::error::{Error, Result};
use std::alloc::Layout;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

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
/// A copy: a row whose vector equals another node's (its owner). It is not linked into the
/// graph (its layer-0 list holds only its owner); searches return it beside its owner.
pub(crate) const COPY: u32 = 16;
/// A node with copies (see [`COPY`]).
pub(crate) const HAS_COPIES: u32 = 32;
const LEVEL_SHIFT: u32 = 8;
/// Bit `PRUNED_SHIFT + layer` is set while the node's list on that layer is full and exactly what
/// the neighbour heuristic kept, closest first (see `Hnsw::connect`). Not stored in images.
const PRUNED_SHIFT: u32 = 16;
const RECORD_ALIGN: usize = 64;
/// Codes shorter than this are packed after the links (see `RecordLayout::new`).
const SHORT_CODE: usize = 128;
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

/// Bytes a new node adds on average: its record, plus its expected upper-layer lists (a node
/// reaches layer l with probability m^-l, so it holds 1/(m-1) lists of 1 + m words).
pub(crate) fn bytes_per_node(code_bytes: usize, m: usize, m0: usize) -> usize {
    RecordLayout::new(code_bytes, m0).size + ((1 + m) * 4).div_ceil(m.max(2) - 1)
}

impl RecordLayout {
    fn new(code_bytes: usize, m0: usize) -> RecordLayout {
        // flags (4) + layer-0 count (4) + m0 links, then label, upper pointer, vector (or code).
        let label = (8 + 4 * m0).next_multiple_of(8);
        let upper = label + 8;
        // Vectors start on a cache line so a 512-byte vector touches 8 lines, not 9; a vector or
        // code under 128 bytes (bit codes, int8 below 128 dimensions, float32 below 32) follows
        // the links directly and the record is padded to 8 bytes only: cache-line padding would
        // take a 384-d bit index's records from 232 to 320 bytes.
        let (vector, align) = if code_bytes >= SHORT_CODE {
            ((upper + 8).next_multiple_of(64), RECORD_ALIGN)
        } else {
            (upper + 8, 8)
        };
        let size = (vector + code_bytes).next_multiple_of(align);
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
    /// Bytes of a stored vector or code.
    code_bytes: usize,
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
    /// An empty store for vectors of `dim` floats kept in `code_bytes` each (4 * dim for
    /// float32) and lists of `m` / `m0` links.
    pub(super) fn new(dim: usize, code_bytes: usize, m: usize, m0: usize) -> NodeStore {
        NodeStore {
            dim,
            code_bytes,
            m,
            m0,
            layout: RecordLayout::new(code_bytes, m0),
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
    pub(super) fn push_slot(&self) -> Result<u32> {
        let id = self.slots.fetch_add(1, Ordering::AcqRel);
        if id as u64 >= MAX_SLOTS {
            self.slots.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Capacity { max: MAX_SLOTS });
        }
        let (k, _) = chunk_of(id);
        if self.chunks[k].load(Ordering::Acquire).is_null() {
            let _guard = self.grow.lock().unwrap_or_else(|e| e.into_inner());
            if self.chunks[k].load(Ordering::Acquire).is_null() {
                let ptr = super::chunk_memory::alloc_chunk(self.chunk_layout(k));
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
    /// Whether the node's list on `level` is marked as a full heuristic selection.
    pub(crate) fn is_pruned(&self, id: u32, level: usize) -> bool {
        level <= MAX_LEVEL && self.has_state(id, 1 << (PRUNED_SHIFT + level as u32))
    }

    /// Marks or unmarks the node's list on `level` as a full heuristic selection; the writer of
    /// the list holds the node's lock or exclusive access.
    pub(crate) fn set_pruned(&self, id: u32, level: usize, pruned: bool) {
        if level > MAX_LEVEL {
            return;
        }
        let bit = 1 << (PRUNED_SHIFT + level as u32);
        if pruned {
            self.flags(id).fetch_or(bit, Ordering::AcqRel);
        } else if self.flags(id).load(Ordering::Relaxed) & bit != 0 {
            self.flags(id).fetch_and(!bit, Ordering::AcqRel);
        }
    }

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

    /// Gives a slot another label (compaction, with exclusive access).
    pub(crate) fn set_label(&self, id: u32, label: u64) {
        self.label_word(id).store(label, Ordering::Relaxed);
    }

    #[inline(always)]
    pub(crate) fn label(&self, id: u32) -> u64 {
        self.label_word(id).load(Ordering::Relaxed)
    }

    /// The node's stored float32 vector (an index without codes).
    #[inline(always)]
    pub(crate) fn vector(&self, id: u32) -> &[f32] {
        debug_assert_eq!(
            self.code_bytes,
            4 * self.dim,
            "a coded store has no float vectors"
        );
        // SAFETY: written once before the node became reachable (see `init`).
        unsafe {
            std::slice::from_raw_parts(
                self.record(id).add(self.layout.vector) as *const f32,
                self.dim,
            )
        }
    }

    /// The node's stored bytes: its float32 vector's, or its code.
    #[inline(always)]
    pub(crate) fn code(&self, id: u32) -> &[u8] {
        // SAFETY: written once before the node became reachable (see `init`).
        unsafe {
            std::slice::from_raw_parts(self.record(id).add(self.layout.vector), self.code_bytes)
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
            let lines = self.code_bytes.div_ceil(64).min(PREFETCH_LINES);
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

    /// Fills a slot that no other thread can reach: stored bytes (a float32 vector's, or a
    /// code), label, level, empty lists.
    ///
    /// # Safety
    /// No other thread may access slot `id` until it is published through a link or the
    /// entry point (which happens with release ordering after this returns).
    pub(super) unsafe fn init(&self, id: u32, label: u64, level: usize, code: &[u8]) {
        assert_eq!(code.len(), self.code_bytes, "stored bytes of a node");
        let rec = self.record(id);
        std::ptr::copy_nonoverlapping(code.as_ptr(), rec.add(self.layout.vector), self.code_bytes);
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

    /// Bytes of the upper-layer neighbour lists.
    pub(crate) fn upper_bytes(&self) -> usize {
        self.upper_bytes.load(Ordering::Relaxed)
    }

    /// Bytes of the records handed out (a chunk's untouched tail is address space, not memory:
    /// the chunks are zero-mapped) and of the upper-layer lists.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots() * self.layout.size + self.upper_bytes.load(Ordering::Relaxed)
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
                unsafe { super::chunk_memory::free_chunk(ptr, self.chunk_layout(k)) };
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
        for (bytes, m0) in [(4, 4), (12, 32), (78, 32), (384, 32), (512, 32), (1536, 48)] {
            let l = RecordLayout::new(bytes, m0);
            // Long vectors start on a cache line; short codes only keep 8-byte alignment.
            let align = if bytes >= SHORT_CODE { RECORD_ALIGN } else { 8 };
            assert!(l.size.is_multiple_of(align));
            assert!(l.vector.is_multiple_of(align));
            assert!(l.label >= 8 + 4 * m0 && l.label.is_multiple_of(8));
            assert!(l.vector + bytes <= l.size && l.size - (l.vector + bytes) < align);
        }
    }
}
