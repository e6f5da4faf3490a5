//! Compaction: repairs the graph around deleted nodes and returns their slots for reuse.

use crate::graph::{Hnsw, COPY, DELETED, FREE, HAS_COPIES, RETIRED};
use crate::parallel::for_each_block;
use crate::search::{Scored, SearchScratch};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Live nodes per block of repair work: neighbouring slots share cache lines of link words.
const REPAIR_BLOCK: usize = 256;

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
    /// Removes every deleted node: each list that pointed at one is rebuilt from its live
    /// neighbours plus the live neighbours of the deleted ones (two hops through chains of
    /// deleted nodes), with the same heuristic as inserts; then the slots are freed. Lists are
    /// repaired by up to `threads` threads: a repair reads its own list and the deleted nodes'
    /// lists (never repaired) and writes only its own, so the live nodes can be shared out freely.
    pub fn compact(&mut self, threads: usize) -> CompactStats {
        self.promote_copies();
        let slots = self.store.slots() as u32;
        let deleted: Vec<u32> = (0..slots)
            .filter(|&id| {
                self.store.flags(id).load(Ordering::Acquire) & (DELETED | FREE) == DELETED
            })
            .collect();
        if deleted.is_empty() {
            return CompactStats::default();
        }
        self.forget_deleted_copies();
        let state = |id: u32| self.store.flags(id).load(Ordering::Acquire);
        let dead = |id: u32| state(id) & (DELETED | FREE) != 0;
        let repaired_lists = AtomicUsize::new(0);
        let this = &*self;
        let repaired: Result<(), Infallible> = for_each_block(
            slots as usize,
            REPAIR_BLOCK,
            REPAIR_BLOCK,
            threads,
            SearchScratch::new,
            |s, range| {
                // Copies are not linked into the graph: their one link is to their owner.
                let repaired = (range.start as u32..range.end as u32)
                    .filter(|&id| state(id) & (DELETED | FREE | COPY) == 0)
                    .map(|id| this.repair_lists(s, id, slots))
                    .sum();
                repaired_lists.fetch_add(repaired, Ordering::Relaxed);
                Ok(())
            },
        );
        let Ok(()) = repaired;
        let repaired_lists = repaired_lists.into_inner();
        let mut s = SearchScratch::new();

        // A deleted entry point hands over to the live node on the highest layer.
        if let Some((entry, _)) = self.entry() {
            if dead(entry) {
                let best = (0..slots)
                    .filter(|&id| state(id) & (DELETED | FREE | COPY) == 0)
                    .max_by_key(|&id| (self.store.level(id), std::cmp::Reverse(id)));
                self.set_entry(best.map(|id| (id, self.store.level(id))));
            }
        }

        let relinked = self.relink_unreachable(&mut s, slots);
        // (It runs before the slots are freed: it only walks live nodes.)

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
            s.sorted.clear();
            s.sorted.extend(ids.iter().map(|&n| Scored {
                dist: self.dist_between(id, n),
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
            self.store.set_pruned(id, level, false);
            repaired += 1;
        }
        repaired
    }

    /// A deleted node with a surviving copy takes that copy's row: the node keeps its place in
    /// the graph (the vectors are equal) under the copy's label and state, and the copy's slot
    /// becomes the deleted one, so compaction frees a copy instead of a linked node.
    fn promote_copies(&mut self) {
        let owners: Vec<(u32, Vec<u32>)> = self
            .copies_mut()
            .iter()
            .map(|(&owner, copies)| (owner, copies.clone()))
            .collect();
        for (owner, copies) in owners {
            let state = |id: u32| self.store.flags(id).load(Ordering::Acquire);
            if state(owner) & DELETED == 0 {
                continue;
            }
            let Some(heir) = copies
                .iter()
                .copied()
                .find(|&c| state(c) & (DELETED | FREE) == 0)
            else {
                continue;
            };
            let label = self.store.label(heir);
            let retired = state(heir) & RETIRED;
            self.store.set_label(owner, label);
            self.move_label(label, owner);
            self.store
                .flags(owner)
                .fetch_and(!DELETED, Ordering::AcqRel);
            self.store.flags(owner).fetch_or(retired, Ordering::AcqRel);
            self.store.flags(heir).fetch_and(!RETIRED, Ordering::AcqRel);
            self.store.flags(heir).fetch_or(DELETED, Ordering::AcqRel);
            if let Some(copies) = self.copies_mut().get_mut(&owner) {
                copies.retain(|&c| c != heir);
            }
        }
    }

    /// Forgets deleted copies, and the copies of deleted nodes (all deleted after
    /// `promote_copies`), before their slots are freed.
    fn forget_deleted_copies(&mut self) {
        let store = &self.store;
        let gone = |id: u32| store.flags(id).load(Ordering::Acquire) & (DELETED | FREE) != 0;
        let copies = self.copies.get_mut().unwrap_or_else(|e| e.into_inner());
        copies.retain(|&owner, list| {
            list.retain(|&c| !gone(c));
            if list.is_empty() || gone(owner) {
                store.flags(owner).fetch_and(!HAS_COPIES, Ordering::AcqRel);
                return false;
            }
            true
        });
        let count = copies.values().map(Vec::len).sum();
        self.copy_count.store(count, Ordering::Relaxed);
    }
}
