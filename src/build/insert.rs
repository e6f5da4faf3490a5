//! Inserting one vector (from any number of threads at once) and batches of them.

use crate::error::Result;
use crate::graph::{Hnsw, Query};
use crate::parallel::for_each_block;
use crate::search::{with_thread_scratch, Scored, SearchScratch, HIDDEN};
use std::sync::atomic::Ordering;

/// Rows a batch gives each thread at least: starting a thread costs about as much as one insert.
const MIN_ROWS_PER_THREAD: usize = 4;

impl Hnsw {
    /// Inserts `vector` under `label`. Safe to call from several threads at once.
    pub fn insert(&self, label: u64, vector: &[f32]) -> Result<()> {
        with_thread_scratch(|s| self.insert_with(s, label, vector))
    }

    /// [`Hnsw::insert`] with caller-owned buffers.
    pub fn insert_with(&self, s: &mut SearchScratch, label: u64, vector: &[f32]) -> Result<()> {
        let mut q = std::mem::take(&mut s.query);
        let result = self
            .query_into(vector, &mut q)
            .and_then(|()| self.insert_prepared(s, label, &q));
        s.query = q;
        result
    }

    fn insert_prepared(&self, s: &mut SearchScratch, label: u64, q: &Query) -> Result<()> {
        if self.contains(label) {
            return Err(crate::error::Error::DuplicateLabel(label));
        }
        // A retired label inserted again (a database re-adding a row whose delete was undone):
        // the new node replaces the old one.
        self.purge(label);
        let level = self.level_for(label);

        // A node that raises the top layer keeps the entry lock for its whole insertion, so
        // that two such nodes cannot both become the entry point.
        let mut entry_guard = None;
        let mut entry = self.entry();
        if entry.is_none_or(|(_, top)| level > top) {
            entry_guard = Some(self.entry_lock.lock().unwrap_or_else(|e| e.into_inner()));
            entry = self.entry();
            if entry.is_some_and(|(_, top)| level <= top) {
                entry_guard = None;
            }
        }
        let mut code = std::mem::take(&mut s.code);
        self.encode_query_into(q, &mut code);
        let Some((entry_id, top)) = entry else {
            let id = self.allocate_claimed(label, level, &code);
            s.code = code;
            let id = id?;
            self.inserted_since_relink.fetch_add(1, Ordering::Relaxed);
            self.set_entry(Some((id, level)));
            return Ok(());
        };

        // Search every layer the node will join, top-down, before anything is linked.
        let mut cur = Scored {
            dist: self.dist_to(q, entry_id),
            id: entry_id,
        };
        for l in (level + 1..=top).rev() {
            cur = self.greedy(s, q, cur, l);
        }
        let joins = level.min(top);
        let mut layers = std::mem::take(&mut s.layers);
        layers.resize_with(joins + 1, Vec::new);
        for l in (0..=joins).rev() {
            self.search_layer(s, q, cur, self.params.ef_construction, l, HIDDEN, false);
            let found = &mut layers[l];
            found.clear();
            found.extend(s.results.drain());
            found.sort_unstable();
            if let Some(&closest) = found.first() {
                cur = closest;
            }
        }

        let result = match self.identical_node(q, &code, &layers[0]) {
            // Identical vectors are one graph node: a copy adds no direction to navigate by,
            // and thousands of them would fill every list near them and cut other rows off.
            Some(owner) => self
                .allocate_claimed(label, 0, &code)
                .map(|id| self.add_copy(owner, id)),
            None => self.allocate_claimed(label, level, &code).map(|id| {
                for (l, found) in layers.iter().enumerate().take(joins + 1).rev() {
                    s.sorted.clear();
                    s.sorted.extend_from_slice(found);
                    self.select_neighbors(s, self.params.own_links(l));
                    self.connect(s, id, l);
                }
                self.inserted_since_relink.fetch_add(1, Ordering::Relaxed);
                if entry_guard.is_some() {
                    self.set_entry(Some((id, level)));
                }
            }),
        };
        s.layers = layers;
        s.code = code;
        result
    }

    /// A found node whose stored bytes equal `code`, `q`'s: its distance to `q` is then exactly
    /// q's own. (For codes: a node with the same code stands for the same vector.)
    fn identical_node(&self, q: &Query, code: &[u8], found: &[Scored]) -> Option<u32> {
        let own = match &q.codes {
            None => self.dist.eval(&q.floats, &q.floats),
            Some(codes) => codes.distance(code),
        };
        found
            .iter()
            .find(|c| c.dist == own && self.store.code(c.id) == code)
            .map(|c| c.id)
    }

    /// A slot filled with `code` (stored bytes) under `label`, the label claimed.
    fn allocate_claimed(&self, label: u64, level: usize, code: &[u8]) -> Result<u32> {
        let id = self.allocate(label, level, code)?;
        if let Err(e) = self.claim_label(label, id) {
            // Lost a race for the label: the slot was never linked; compaction reclaims it.
            self.store
                .flags(id)
                .fetch_or(crate::graph::DELETED, Ordering::AcqRel);
            self.note_deleted(1);
            return Err(e);
        }
        Ok(id)
    }

    /// Writes the new node's list on `level` from `s.selected` and links it back from each
    /// neighbour, pruning a full neighbour list with the heuristic.
    fn connect(&self, s: &mut SearchScratch, id: u32, level: usize) {
        let cap = self.params.max_links(level);
        {
            let _guard = self.store.lock(id);
            let words = self.store.links(id, level);
            let n = s.selected.len().min(cap);
            for (w, c) in words[1..=n].iter().zip(&s.selected) {
                w.store(c.id, Ordering::Release);
            }
            words[0].store(n as u32, Ordering::Release);
        }
        // The list is the heuristic's choice, closest first: full, it needs no pruning later.
        self.store.set_pruned(id, level, s.selected.len() >= cap);
        let mut pending = std::mem::take(&mut s.pending);
        pending.clear();
        pending.extend(s.selected.iter().map(|c| c.id));
        for &n in &pending {
            if n == id {
                continue;
            }
            let _guard = self.store.lock(n);
            let words = self.store.links(n, level);
            let count = (words[0].load(Ordering::Acquire) as usize).min(cap);
            if words[1..=count]
                .iter()
                .any(|w| w.load(Ordering::Relaxed) == id)
            {
                continue;
            }
            if count < cap {
                words[1 + count].store(id, Ordering::Release);
                words[0].store(count as u32 + 1, Ordering::Release);
                continue;
            }
            let dist = self.dist_between(n, id);
            // A full list the heuristic chose is re-chosen unchanged from itself plus a candidate
            // farther than all its members (they come first, and fill it): skip the pruning.
            if self.store.is_pruned(n, level) {
                let last = words[count].load(Ordering::Relaxed);
                if dist > self.dist_between(n, last) {
                    continue;
                }
            }
            s.sorted.clear();
            s.sorted.push(Scored { dist, id });
            for w in &words[1..=count] {
                let e = w.load(Ordering::Relaxed);
                s.sorted.push(Scored {
                    dist: self.dist_between(n, e),
                    id: e,
                });
            }
            s.sorted.sort_unstable();
            self.select_neighbors(s, cap);
            for (w, c) in words[1..].iter().zip(&s.selected) {
                w.store(c.id, Ordering::Release);
            }
            words[0].store(s.selected.len() as u32, Ordering::Release);
            self.store.set_pruned(n, level, s.selected.len() == cap);
        }
        s.pending = pending;
    }

    /// The labels among `first..first + count` whose nodes will reach layer 1 or above: a sample
    /// of about one row in M that a database can link before the rest of a build (see
    /// [`Hnsw::insert_batch`]).
    pub fn upper_labels(&self, first: u64, count: u64) -> Vec<u64> {
        (first..first.saturating_add(count))
            .filter(|&label| self.level_for(label) > 0)
            .collect()
    }

    /// Inserts row `i` of `vectors` (row-major, `dim` floats each) under label
    /// `first_label + i`, using `threads` threads. Stops at the first error.
    pub fn insert_numbered(&self, vectors: &[f32], first_label: u64, threads: usize) -> Result<()> {
        let rows = vectors.len() / self.params.dim;
        let labels: Vec<u64> = (0..rows as u64).map(|i| first_label + i).collect();
        self.insert_batch(vectors, &labels, threads)
    }

    /// Inserts row `i` of `vectors` under `labels[i]` using up to `threads` threads (fewer for
    /// small batches). Stops at the first error.
    ///
    /// Rows go in by decreasing level: the nodes of the upper layers, a sample of the whole batch,
    /// are linked first, so every later row finds a graph that already spans all the data. In
    /// table order (say, one cluster after another) early rows would otherwise only ever be
    /// linked to their own cluster, and searches could not find a way between clusters.
    pub fn insert_batch(&self, vectors: &[f32], labels: &[u64], threads: usize) -> Result<()> {
        let dim = self.params.dim;
        let rows = labels.len().min(vectors.len() / dim);
        if rows > 0 && self.codec().is_none() {
            // A coded index learns its ranges from its first batch (every row of it).
            self.train(&vectors[..rows * dim])?;
        }
        let mut order: Vec<(usize, u32)> = (0..rows)
            .map(|i| (self.level_for(labels[i]), i as u32))
            .collect();
        order.sort_by_key(|&(level, i)| (std::cmp::Reverse(level), i));
        for_each_block(
            rows,
            1,
            MIN_ROWS_PER_THREAD,
            threads,
            SearchScratch::new,
            |s, range| {
                for &(_, i) in &order[range] {
                    let i = i as usize;
                    self.insert_with(s, labels[i], &vectors[i * dim..(i + 1) * dim])?;
                }
                Ok(())
            },
        )
    }
}
