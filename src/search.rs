//! Searching: greedy descent through the upper layers, then a best-first search of layer 0.

use crate::error::Result;
use crate::graph::{Hnsw, Query, DELETED, FREE, HAS_COPIES, RETIRED};
use std::cell::RefCell;
use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

/// State bits of nodes that plain searches never return.
pub(crate) const HIDDEN: u32 = DELETED | RETIRED;

/// A search hit: the caller's label and the metric's distance (smaller is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    pub label: u64,
    pub distance: f32,
}

/// A node with its distance to the query, ordered by distance then slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    pub dist: f32,
    pub id: u32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

/// Visited marks that reset in O(1): a slot is visited when its tag equals the epoch. Tags are
/// 16-bit to keep the array cache-friendly; it is cleared once every 65535 searches.
#[derive(Default)]
pub(crate) struct Visited {
    tags: Vec<u16>,
    epoch: u16,
}

impl Visited {
    /// Starts a new search over `slots` slots.
    pub(crate) fn reset(&mut self, slots: usize) {
        if self.tags.len() < slots {
            self.tags.resize(slots.next_power_of_two(), 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.tags.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `id`; true if it was not marked yet.
    #[inline(always)]
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        let i = id as usize;
        if i >= self.tags.len() {
            // A node inserted after `reset`: grow rather than miss it.
            self.tags.resize((i + 1).next_power_of_two(), 0);
        }
        let tag = &mut self.tags[i];
        let fresh = *tag != self.epoch;
        *tag = self.epoch;
        fresh
    }
}

/// How many of a search's candidates a re-ranking reader gets for top `k` when `retired` retired
/// labels (which its snapshot may not see) can be among them: k and half as many again (at least
/// 4 more), plus the retired ones. The exact ranking differs from the index's only by float
/// rounding between the two distance implementations, so the true top k lies inside that front;
/// a row the reader cannot see makes it complete the answer from the table.
pub fn candidates_kept(k: usize, retired: usize) -> usize {
    k + (k / 2).max(4) + retired
}

/// Per-thread buffers reused across searches and inserts.
#[derive(Default)]
pub struct SearchScratch {
    pub(crate) visited: Visited,
    pub(crate) candidates: BinaryHeap<Reverse<Scored>>,
    pub(crate) results: BinaryHeap<Scored>,
    pub(crate) query: Query,
    /// Stored bytes of a vector being inserted.
    pub(crate) code: Vec<u8>,
    pub(crate) sorted: Vec<Scored>,
    pub(crate) selected: Vec<Scored>,
    pub(crate) links: Vec<u32>,
    pub(crate) pending: Vec<u32>,
    /// Copies of a node, read by filtered searches.
    pub(crate) selected_ids: Vec<u32>,
    /// Each layer's candidates of an insert, found before the node is linked.
    pub(crate) layers: Vec<Vec<Scored>>,
    /// Distances computed by the searches that used these buffers (for benchmarks).
    pub(crate) distances: u64,
}

impl SearchScratch {
    /// Empty buffers; they grow to fit the first searches and are then reused.
    pub fn new() -> SearchScratch {
        SearchScratch::default()
    }

    /// Distances computed by the searches that used these buffers so far.
    pub fn distance_count(&self) -> u64 {
        self.distances
    }
}

thread_local! {
    static SCRATCH: RefCell<SearchScratch> = RefCell::new(SearchScratch::new());
}

/// Runs `f` with this thread's scratch buffers (a fresh set if they are already in use).
pub(crate) fn with_thread_scratch<R>(f: impl FnOnce(&mut SearchScratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut SearchScratch::new()),
    })
}

/// Distances counted so far by this thread's shared scratch (searches that take no scratch).
pub(crate) fn thread_distance_count() -> u64 {
    with_thread_scratch(|s| s.distance_count())
}

impl Hnsw {
    /// The `k` nearest searchable labels to `query`, closest first, exploring `ef` candidates
    /// (raised to `k` when smaller).
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>> {
        let mut out = Vec::with_capacity(k);
        with_thread_scratch(|s| self.search_with(s, query, k, ef, &mut out))?;
        Ok(out)
    }

    /// Like [`Hnsw::search`] but returns all `ef` candidates found (at least `k` when the index
    /// holds that many), closest first: callers that re-rank exactly want the extra ones.
    /// When `ef` covers every searchable node, the answer is the exact one: a graph search could
    /// still miss a node that pruning left without incoming links.
    ///
    /// Retired labels are candidates too (see [`Hnsw::retire`]): the caller decides, by its
    /// own visibility rules, which candidates it may return.
    pub fn search_candidates(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>> {
        let ef = ef.max(k);
        if ef >= self.len() + self.retired_count() {
            return self.search_exact_hiding(query, ef, DELETED);
        }
        let mut out = Vec::with_capacity(ef);
        with_thread_scratch(|s| self.search_hiding(s, query, ef, ef, DELETED, &mut out))?;
        Ok(out)
    }

    /// Candidates for a reader that re-ranks exactly and checks each row's visibility itself
    /// (a database query): the search widens `ef` by the retired labels (up to doubling it), since
    /// the reader's snapshot may not see them, and when the graph finds fewer than
    /// min(k, searchable + retired labels) an exact scan answers instead. The closest
    /// [`candidates_kept`] results, closest first: the search explores `ef`, but the reader
    /// fetches and re-ranks only the front of the list, where its exact top k lies. A coded
    /// index answers for k × `Params::overfetch` (its codes rank only approximately).
    pub fn candidates(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbor>> {
        self.candidates_overfetched(query, k, ef, 0)
    }

    /// The over-fetch factor a search uses when its caller asks for `requested` (0: the index's
    /// option): always 1 for float32, whose distances are exact.
    pub fn overfetch_for(&self, requested: usize) -> usize {
        match self.params.quantization {
            crate::quantize::Quantization::F32 => 1,
            _ if requested == 0 => self.params.overfetch,
            _ => requested.min(crate::params::OVERFETCH_MAX),
        }
    }

    /// [`Hnsw::candidates`] with the over-fetch factor a session chose (0: the index's).
    pub fn candidates_overfetched(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        overfetch: usize,
    ) -> Result<Vec<Neighbor>> {
        // A coded index ranks by estimates: the reader re-ranks `overfetch` times as many.
        let k = k.saturating_mul(self.overfetch_for(overfetch));
        let ef = ef.max(k);
        let retired = self.retired_count().min(ef);
        let mut hits = self.search_candidates(query, k, ef + retired)?;
        if hits.len() < k.min(self.len() + self.retired_count()) {
            return self.search_exact_hiding(query, k, DELETED);
        }
        hits.truncate(candidates_kept(k, retired));
        Ok(hits)
    }

    /// [`Hnsw::candidates_overfetched`] for many queries (row-major, `dim` floats each) on up to
    /// `threads` threads: one answer per query, `None` for a query the index cannot search (wrong
    /// length, NaN, or zero under cosine) so the caller can answer it another way.
    pub fn candidates_batch(
        &self,
        queries: &[f32],
        k: usize,
        ef: usize,
        overfetch: usize,
        threads: usize,
    ) -> Vec<Option<Vec<Neighbor>>> {
        let dim = self.dim();
        let n = queries.len() / dim;
        let answers: Vec<std::sync::Mutex<Option<Vec<Neighbor>>>> =
            (0..n).map(|_| std::sync::Mutex::new(None)).collect();
        // A few queries per block: searches cost about the same, so blocks stay balanced.
        let _ = crate::parallel::for_each_block(
            n,
            4,
            2,
            threads,
            || (),
            |_, range| -> std::result::Result<(), ()> {
                for i in range {
                    let hits = self
                        .candidates_overfetched(&queries[i * dim..(i + 1) * dim], k, ef, overfetch)
                        .ok();
                    *answers[i].lock().unwrap_or_else(|e| e.into_inner()) = hits;
                }
                Ok(())
            },
        );
        answers
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }

    /// [`Hnsw::search`] with caller-owned buffers; results replace the contents of `out`.
    pub fn search_with(
        &self,
        s: &mut SearchScratch,
        query: &[f32],
        k: usize,
        ef: usize,
        out: &mut Vec<Neighbor>,
    ) -> Result<()> {
        self.search_hiding(s, query, k, ef, HIDDEN, out)
    }

    /// A search that never returns nodes with any of the `hide` state bits.
    fn search_hiding(
        &self,
        s: &mut SearchScratch,
        query: &[f32],
        k: usize,
        ef: usize,
        hide: u32,
        out: &mut Vec<Neighbor>,
    ) -> Result<()> {
        out.clear();
        let mut q = std::mem::take(&mut s.query);
        let prepared = self.query_into(query, &mut q);
        let result = prepared.map(|()| {
            if k > 0 {
                self.search_prepared(s, &q, ef.max(k), hide);
                out.extend(s.sorted.iter().take(k).map(|c| Neighbor {
                    label: self.store.label(c.id),
                    distance: c.dist,
                }));
            }
        });
        s.query = q;
        result
    }

    /// The exact `k` nearest searchable labels by brute force over the stored vectors: the
    /// fallback when a graph search returns fewer results than the index holds.
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>> {
        self.search_exact_hiding(query, k, HIDDEN)
    }

    /// [`Hnsw::search_exact`] over the nodes without any of the `hide` state bits.
    pub(crate) fn search_exact_hiding(
        &self,
        query: &[f32],
        k: usize,
        hide: u32,
    ) -> Result<Vec<Neighbor>> {
        let mut found = self.search_exact_block(&[query], k, hide)?;
        Ok(found.pop().unwrap_or_default())
    }

    /// [`Hnsw::search_exact`] for several queries in one pass over the nodes: each stored vector
    /// is read once for all of them, so a block of queries costs about one query's memory
    /// traffic (one pass per query is bound by memory bandwidth, not by the distances).
    pub fn search_exact_many(&self, queries: &[&[f32]], k: usize) -> Result<Vec<Vec<Neighbor>>> {
        self.search_exact_block(queries, k, HIDDEN)
    }

    /// The exact top `k` of each query over the nodes without any of the `hide` state bits.
    fn search_exact_block(
        &self,
        queries: &[&[f32]],
        k: usize,
        hide: u32,
    ) -> Result<Vec<Vec<Neighbor>>> {
        let mut prepared = Vec::with_capacity(queries.len());
        for query in queries {
            let mut q = Query::default();
            self.query_into(query, &mut q)?;
            prepared.push(q);
        }
        let mut best: Vec<BinaryHeap<Scored>> = (0..queries.len())
            .map(|_| BinaryHeap::with_capacity(k + 1))
            .collect();
        for id in 0..self.store.slots() as u32 {
            if self.store.has_state(id, hide | FREE) {
                continue;
            }
            for (q, heap) in prepared.iter().zip(best.iter_mut()) {
                let scored = Scored {
                    dist: self.dist_to(q, id),
                    id,
                };
                if heap.len() < k {
                    heap.push(scored);
                } else if heap.peek().is_some_and(|worst| scored < *worst) {
                    heap.pop();
                    heap.push(scored);
                }
            }
        }
        Ok(best
            .into_iter()
            .map(|heap| {
                heap.into_sorted_vec()
                    .into_iter()
                    .map(|c| Neighbor {
                        label: self.store.label(c.id),
                        distance: c.dist,
                    })
                    .collect()
            })
            .collect())
    }

    /// Searches with a prepared query; leaves the best `ef` nodes without any `hide` state bit,
    /// sorted, in `s.sorted`.
    pub(crate) fn search_prepared(&self, s: &mut SearchScratch, q: &Query, ef: usize, hide: u32) {
        s.sorted.clear();
        let Some((entry, top)) = self.entry() else {
            return;
        };
        let mut cur = Scored {
            dist: self.dist_to(q, entry),
            id: entry,
        };
        s.distances += 1;
        for level in (1..=top).rev() {
            cur = self.greedy(s, q, cur, level);
        }
        self.search_layer(s, q, cur, ef, 0, hide, true);
        s.sorted.extend(s.results.drain());
        s.sorted.sort_unstable();
        self.add_copies(s, ef, hide);
    }

    /// Puts each found node's copies (identical vectors: the same distance) right after it in
    /// `s.sorted`, keeping at most `ef`; drops hidden nodes that were kept only as carriers of
    /// copies.
    fn add_copies(&self, s: &mut SearchScratch, ef: usize, hide: u32) {
        if self.copy_count.load(std::sync::atomic::Ordering::Relaxed) == 0
            || !s
                .sorted
                .iter()
                .any(|c| self.store.has_state(c.id, HAS_COPIES))
        {
            return;
        }
        let mut out = std::mem::take(&mut s.selected);
        out.clear();
        for i in 0..s.sorted.len() {
            let c = s.sorted[i];
            if !self.store.has_state(c.id, hide) {
                out.push(c);
            }
            if self.store.has_state(c.id, HAS_COPIES) {
                s.pending.clear();
                self.copies_of(c.id, &mut s.pending);
                out.extend(
                    s.pending
                        .iter()
                        .filter(|&&copy| !self.store.has_state(copy, hide | FREE))
                        .map(|&copy| Scored {
                            dist: c.dist,
                            id: copy,
                        }),
                );
            }
            if out.len() >= ef {
                out.truncate(ef);
                break;
            }
        }
        std::mem::swap(&mut s.sorted, &mut out);
        s.selected = out;
    }

    /// Moves to ever closer neighbours on one layer until none is closer.
    pub(crate) fn greedy(
        &self,
        s: &mut SearchScratch,
        q: &Query,
        mut cur: Scored,
        level: usize,
    ) -> Scored {
        loop {
            let mut moved = false;
            self.read_links(s, cur.id, level);
            s.distances += s.links.len() as u64;
            for i in 0..s.links.len() {
                let n = s.links[i];
                let d = self.dist_to(q, n);
                if d < cur.dist {
                    cur = Scored { dist: d, id: n };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Copies a neighbour list into `s.links` (readers take no lock; see graph.rs).
    #[inline(always)]
    pub(crate) fn read_links(&self, s: &mut SearchScratch, id: u32, level: usize) {
        let words = self.store.links(id, level);
        let count = (words[0].load(Ordering::Acquire) as usize).min(words.len() - 1);
        s.links.clear();
        s.links
            .extend(words[1..=count].iter().map(|w| w.load(Ordering::Acquire)));
    }

    /// Best-first search of one layer from `start`: leaves the `ef` closest nodes without any
    /// `hide` state bit in `s.results` (a max-heap). Hidden nodes are walked through but never
    /// returned, unless `carriers` and they have copies (whose own state decides).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search_layer(
        &self,
        s: &mut SearchScratch,
        q: &Query,
        start: Scored,
        ef: usize,
        level: usize,
        hide: u32,
        carriers: bool,
    ) {
        let admit = |n: u32| {
            let flags = self
                .store
                .flags(n)
                .load(std::sync::atomic::Ordering::Acquire);
            flags & hide == 0 || (carriers && flags & HAS_COPIES != 0)
        };
        s.visited.reset(self.store.slots());
        // Without tombstones, skip reading each neighbour's flags (an extra cache line).
        let tombstones = self.deleted_count() + self.retired_count() > 0;
        s.candidates.clear();
        s.results.clear();
        s.visited.insert(start.id);
        s.candidates.push(Reverse(start));
        if admit(start.id) {
            s.results.push(start);
        }
        let mut worst = if s.results.is_empty() {
            f32::INFINITY
        } else {
            start.dist
        };
        while let Some(Reverse(c)) = s.candidates.pop() {
            if c.dist > worst && s.results.len() >= ef {
                break;
            }
            // The next candidate's list is likely needed soon: start loading it now.
            if level == 0 {
                if let Some(Reverse(next)) = s.candidates.peek() {
                    self.store.prefetch_links(next.id);
                }
            }
            self.read_links(s, c.id, level);
            // Keep the unvisited neighbours and start loading all their vectors at once, so
            // the memory fetches overlap instead of stalling one distance at a time.
            let mut fresh = 0;
            for i in 0..s.links.len() {
                let n = s.links[i];
                if s.visited.insert(n) {
                    self.store.prefetch(n);
                    s.links[fresh] = n;
                    fresh += 1;
                }
            }
            s.links.truncate(fresh);
            s.distances += fresh as u64;
            for i in 0..s.links.len() {
                let n = s.links[i];
                let d = self.dist_to(q, n);
                if s.results.len() < ef || d < worst {
                    let scored = Scored { dist: d, id: n };
                    s.candidates.push(Reverse(scored));
                    if !tombstones || admit(n) {
                        s.results.push(scored);
                        if s.results.len() > ef {
                            s.results.pop();
                        }
                    }
                    if let Some(top) = s.results.peek() {
                        worst = top.dist;
                    }
                }
            }
        }
    }
}
