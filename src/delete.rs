//! Deleting: tombstones that searches skip, retirement (deleted for new readers, still a
//! candidate for older snapshots), and compaction that repairs the graph around deleted nodes
//! and returns their slots for reuse.

use crate::graph::{Hnsw, DELETED, FREE};
use crate::search::{Scored, SearchScratch, HIDDEN};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactStats {
    /// Deleted nodes whose slots became free.
    pub reclaimed: usize,
    /// Neighbour lists rewritten because they pointed at deleted nodes.
    pub repaired_lists: usize,
    /// Live nodes that had lost every layer-0 in-link and were linked again.
    pub relinked: usize,
}

impl Hnsw {
    /// Marks `label` deleted: it is never returned again. Its slot stays in the graph (other
    /// nodes still route through it) until [`Hnsw::compact`]. Returns false if it was absent.
    pub fn delete(&self, label: u64) -> bool {
        self.tombstone(self.unclaim_label(label, false))
    }

    /// Hides `label` from [`Hnsw::search`] while [`Hnsw::search_candidates`] still returns it:
    /// a database deletes a row for new transactions, but older snapshots may still see it and
    /// filter candidates by their own visibility. [`Hnsw::purge`] deletes it for good. Returns
    /// false if it was absent or already retired.
    pub fn retire(&self, label: u64) -> bool {
        self.retire_label(label)
    }

    /// Deletes `label` if it is retired (no snapshot can see it any more); false otherwise.
    pub fn purge(&self, label: u64) -> bool {
        self.tombstone(self.unclaim_label(label, true))
    }

    /// Marks an unclaimed slot deleted.
    fn tombstone(&self, id: Option<u32>) -> bool {
        let Some(id) = id else {
            return false;
        };
        self.store.flags(id).fetch_or(DELETED, Ordering::AcqRel);
        self.note_deleted(1);
        true
    }

    /// Removes every deleted node: each list that pointed at one is rebuilt from its live
    /// neighbours plus the live neighbours of the deleted ones (two hops through chains of
    /// deleted nodes), with the same heuristic as inserts; then the slots are freed.
    pub fn compact(&mut self) -> CompactStats {
        self.compact_with_threads(1)
    }

    /// [`Hnsw::compact`] with the lists repaired by `threads` threads. A repair reads its own
    /// list and the deleted nodes' lists (never repaired) and writes only its own, so the live
    /// nodes can be shared out freely.
    pub fn compact_with_threads(&mut self, threads: usize) -> CompactStats {
        let slots = self.store.slots() as u32;
        let state = |id: u32| self.store.flags(id).load(Ordering::Acquire);
        let dead = |id: u32| state(id) & (DELETED | FREE) != 0;
        let deleted: Vec<u32> = (0..slots)
            .filter(|&id| state(id) & FREE == 0 && state(id) & DELETED != 0)
            .collect();
        if deleted.is_empty() {
            return CompactStats::default();
        }
        // Nodes are handed out in blocks: neighbouring slots share cache lines of link words.
        const BLOCK: u32 = 256;
        let next = AtomicU32::new(0);
        let repaired_lists = AtomicUsize::new(0);
        let this = &*self;
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| {
                    let mut s = SearchScratch::new();
                    loop {
                        let start = next.fetch_add(BLOCK, Ordering::Relaxed);
                        if start >= slots {
                            break;
                        }
                        let mut repaired = 0;
                        for id in (start..slots.min(start + BLOCK)).filter(|&id| !dead(id)) {
                            repaired += this.repair_lists(&mut s, id, slots);
                        }
                        repaired_lists.fetch_add(repaired, Ordering::Relaxed);
                    }
                });
            }
        });
        let repaired_lists = repaired_lists.into_inner();
        let mut s = SearchScratch::new();

        // A deleted entry point hands over to the live node on the highest layer.
        if let Some((entry, _)) = self.entry() {
            if dead(entry) {
                let best = (0..slots)
                    .filter(|&id| !dead(id))
                    .max_by_key(|&id| (self.store.level(id), std::cmp::Reverse(id)));
                self.set_entry(best.map(|id| (id, self.store.level(id))));
            }
        }

        let relinked = self.relink_orphans(&mut s, slots);
        // (relink_orphans runs before the slots are freed: it only walks live nodes.)

        let mut free = self.free_list();
        for &id in &deleted {
            self.store.release(id);
            free.push(id);
        }
        self.set_free_list(free);
        self.note_deleted(-(deleted.len() as isize));
        CompactStats {
            reclaimed: deleted.len(),
            repaired_lists,
            relinked,
        }
    }

    /// Rebuilds each list of live node `id` that points at a deleted node; returns how many.
    fn repair_lists(&self, s: &mut SearchScratch, id: u32, slots: u32) -> usize {
        let dead = |id: u32| self.store.flags(id).load(Ordering::Acquire) & (DELETED | FREE) != 0;
        let mut repaired = 0;
        let mut ids = Vec::new();
        for level in 0..=self.store.level(id) {
            self.read_links(s, id, level);
            if !s.links.iter().any(|&n| dead(n)) {
                continue;
            }
            // Candidate set: live neighbours, plus live nodes up to two hops through dead ones.
            s.visited.reset(slots as usize);
            s.visited.insert(id);
            ids.clear();
            let mut frontier: Vec<u32> = s.links.clone();
            for hop in 0..3 {
                let mut next = Vec::new();
                for &n in &frontier {
                    if !s.visited.insert(n) {
                        continue;
                    }
                    if !dead(n) {
                        ids.push(n);
                    } else if hop < 2 && self.store.level(n) >= level {
                        self.read_links(s, n, level);
                        next.extend_from_slice(&s.links);
                    }
                }
                frontier = next;
            }
            let base = self.store.vector(id);
            s.sorted.clear();
            s.sorted.extend(ids.iter().map(|&n| Scored {
                dist: self.dist.eval(base, self.store.vector(n)),
                id: n,
            }));
            s.sorted.sort_unstable();
            let cap = self.params.max_links(level);
            self.select_neighbors(s, cap);
            let words = self.store.links(id, level);
            for (w, c) in words[1..].iter().zip(&s.selected) {
                w.store(c.id, Ordering::Release);
            }
            words[0].store(s.selected.len() as u32, Ordering::Release);
            repaired += 1;
        }
        repaired
    }

    /// Links every node that a search from the entry point cannot reach (HNSW's pruning can cut
    /// a few off, even without deletes); run after bulk builds. Returns how many were linked.
    pub fn reconnect(&mut self) -> usize {
        let slots = self.store.slots() as u32;
        let mut s = SearchScratch::new();
        self.relink_orphans(&mut s, slots)
    }

    /// Makes every live node reachable on layer 0 again: nodes cut off from the entry point
    /// (their in-links came from deleted nodes) get a link from a near reachable node. Returns
    /// how many links were added.
    fn relink_orphans(&mut self, s: &mut SearchScratch, slots: u32) -> usize {
        let live = |id: u32| self.store.flags(id).load(Ordering::Acquire) & (DELETED | FREE) == 0;
        let Some((entry, _)) = self.entry() else {
            return 0;
        };
        let cap = self.params.max_links(0);
        let mut relinked = 0;
        // Replacing a link can cut off another node, so repeat until nothing is cut off.
        for _pass in 0..8 {
            let mut in_degree = vec![0u32; slots as usize];
            for id in (0..slots).filter(|&id| live(id)) {
                self.read_links(s, id, 0);
                for &n in &s.links {
                    in_degree[n as usize] += 1;
                }
            }
            let mut reached = vec![false; slots as usize];
            self.mark_reachable(s, entry, &mut reached);
            let cut_off: Vec<u32> = (0..slots)
                .filter(|&id| live(id) && !reached[id as usize])
                .collect();
            if cut_off.is_empty() {
                break;
            }
            for orphan in cut_off {
                if reached[orphan as usize] {
                    continue; // reachable through an orphan linked earlier in this pass
                }
                if let Some(old) = self.link_from_nearest(s, orphan, entry, cap, &in_degree) {
                    if let Some(old) = old {
                        in_degree[old as usize] -= 1;
                    }
                    in_degree[orphan as usize] += 1;
                    relinked += 1;
                    self.mark_reachable(s, orphan, &mut reached);
                }
            }
        }
        relinked
    }

    /// Marks every node reachable from `from` on layer 0.
    fn mark_reachable(&self, s: &mut SearchScratch, from: u32, reached: &mut [bool]) {
        let mut stack = vec![from];
        reached[from as usize] = true;
        while let Some(id) = stack.pop() {
            self.read_links(s, id, 0);
            for &n in &s.links {
                if !reached[n as usize] {
                    reached[n as usize] = true;
                    stack.push(n);
                }
            }
        }
    }

    /// Adds a layer-0 link to `orphan` from the nearest node a search from the entry point finds
    /// that has room, or that can drop its farthest neighbour (one with other in-links).
    /// Returns None if no host was found, else the dropped neighbour, if any.
    fn link_from_nearest(
        &self,
        s: &mut SearchScratch,
        orphan: u32,
        entry: u32,
        cap: usize,
        in_degree: &[u32],
    ) -> Option<Option<u32>> {
        let q = self.store.vector(orphan).to_vec();
        let mut cur = Scored {
            dist: self.dist.eval(&q, self.store.vector(entry)),
            id: entry,
        };
        for level in (1..=self.store.level(entry)).rev() {
            cur = self.greedy(s, &q, cur, level);
        }
        self.search_layer(s, &q, cur, self.params.ef_construction, 0, HIDDEN);
        let mut near: Vec<Scored> = s.results.drain().collect();
        near.sort_unstable();
        for host in near.into_iter().map(|c| c.id).filter(|&n| n != orphan) {
            let words = self.store.links(host, 0);
            let count = (words[0].load(Ordering::Acquire) as usize).min(cap);
            if count < cap {
                words[1 + count].store(orphan, Ordering::Release);
                words[0].store(count as u32 + 1, Ordering::Release);
                return Some(None);
            }
            let vh = self.store.vector(host);
            let victim = (1..=count)
                .map(|i| (i, words[i].load(Ordering::Acquire)))
                .filter(|&(_, n)| in_degree[n as usize] > 1)
                .max_by(|a, b| {
                    let da = self.dist.eval(vh, self.store.vector(a.1));
                    let db = self.dist.eval(vh, self.store.vector(b.1));
                    da.total_cmp(&db)
                });
            if let Some((slot, old)) = victim {
                words[slot].store(orphan, Ordering::Release);
                return Some(Some(old));
            }
        }
        None
    }
}
