//! Deleting: tombstones that searches skip, and compaction that repairs the graph around
//! deleted nodes and returns their slots for reuse.

use crate::graph::{Hnsw, DELETED, FREE};
use crate::search::{Scored, SearchScratch};
use std::sync::atomic::Ordering;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactStats {
    /// Deleted nodes whose slots became free.
    pub reclaimed: usize,
    /// Neighbour lists rewritten because they pointed at deleted nodes.
    pub repaired_lists: usize,
}

impl Hnsw {
    /// Marks `label` deleted: it is never returned again. Its slot stays in the graph (other
    /// nodes still route through it) until [`Hnsw::compact`]. Returns false if it was absent.
    pub fn delete(&self, label: u64) -> bool {
        let Some(id) = self.unclaim_label(label) else {
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
        let slots = self.store.slots() as u32;
        let state = |id: u32| self.store.flags(id).load(Ordering::Acquire);
        let dead = |id: u32| state(id) & (DELETED | FREE) != 0;
        let deleted: Vec<u32> = (0..slots)
            .filter(|&id| state(id) & FREE == 0 && state(id) & DELETED != 0)
            .collect();
        if deleted.is_empty() {
            return CompactStats::default();
        }
        let mut s = SearchScratch::new();
        let mut repaired_lists = 0;
        let mut ids = Vec::new();
        for id in (0..slots).filter(|&id| !dead(id)) {
            for level in 0..=self.store.level(id) {
                self.read_links(&mut s, id, level);
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
                            self.read_links(&mut s, n, level);
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
                self.select_neighbors(&mut s, cap);
                let words = self.store.links(id, level);
                for (w, c) in words[1..].iter().zip(&s.selected) {
                    w.store(c.id, Ordering::Release);
                }
                words[0].store(s.selected.len() as u32, Ordering::Release);
                repaired_lists += 1;
            }
        }

        // A deleted entry point hands over to the live node on the highest layer.
        if let Some((entry, _)) = self.entry() {
            if dead(entry) {
                let best = (0..slots)
                    .filter(|&id| !dead(id))
                    .max_by_key(|&id| (self.store.level(id), std::cmp::Reverse(id)));
                self.set_entry(best.map(|id| (id, self.store.level(id))));
            }
        }

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
        }
    }
}
