//! Neighbour selection, shared by inserts and compaction's list repairs.

use crate::graph::Hnsw;
use crate::search::SearchScratch;

impl Hnsw {
    /// The HNSW heuristic: walks `s.sorted` (closest first) and keeps a candidate only if it is
    /// closer to the base than to every neighbour kept so far. Result in `s.selected`.
    pub(crate) fn select_neighbors(&self, s: &mut SearchScratch, m: usize) {
        s.selected.clear();
        if s.sorted.len() <= m {
            s.selected.extend_from_slice(&s.sorted);
            return;
        }
        for &c in &s.sorted {
            if s.selected.len() >= m {
                break;
            }
            let diverse = s
                .selected
                .iter()
                .all(|kept| self.dist_between(c.id, kept.id) >= c.dist);
            if diverse {
                s.selected.push(c);
            }
        }
    }
}
