//! Reachability: HNSW's pruning (on insert, and when compaction rebuilds lists) can leave a
//! node without in-links, which no search can then find; relinking gives each such node a link
//! from a near reachable node.

use crate::graph::{Hnsw, COPY, DELETED, FREE};
use crate::search::{Scored, SearchScratch, HIDDEN};
use std::sync::atomic::Ordering;

impl Hnsw {
    /// Links every node that a search from the entry point cannot reach (HNSW's pruning can cut
    /// a few off, even without deletes); run after bulk builds. Returns how many were linked.
    pub fn relink(&mut self) -> usize {
        let slots = self.store.slots() as u32;
        let mut s = SearchScratch::new();
        self.inserted_since_relink.store(0, Ordering::Relaxed);
        self.relink_unreachable(&mut s, slots)
    }

    /// Makes every live node reachable on layer 0 again: nodes cut off from the entry point
    /// (their in-links came from deleted nodes) get a link from a near reachable node. Returns
    /// how many links were added.
    pub(super) fn relink_unreachable(&mut self, s: &mut SearchScratch, slots: u32) -> usize {
        // Copies are reached through their owner, never through lists.
        let live =
            |id: u32| self.store.flags(id).load(Ordering::Acquire) & (DELETED | FREE | COPY) == 0;
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
        let q = self.node_query(orphan);
        let mut cur = Scored {
            dist: self.dist_to(&q, entry),
            id: entry,
        };
        for level in (1..=self.store.level(entry)).rev() {
            cur = self.greedy(s, &q, cur, level);
        }
        self.search_layer(s, &q, cur, self.params.ef_construction, 0, HIDDEN, false);
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
            let victim = (1..=count)
                .map(|i| (i, words[i].load(Ordering::Acquire)))
                .filter(|&(_, n)| in_degree[n as usize] > 1)
                .max_by(|a, b| {
                    let da = self.dist_between(host, a.1);
                    let db = self.dist_between(host, b.1);
                    da.total_cmp(&db)
                });
            if let Some((slot, old)) = victim {
                words[slot].store(orphan, Ordering::Release);
                self.store.set_pruned(host, 0, false);
                return Some(Some(old));
            }
        }
        None
    }
}
