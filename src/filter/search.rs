//! The filtered traversals of layer 0 and the exact pass over the matching labels.

use super::LabelFilter;
use crate::graph::{Hnsw, Query, DELETED, FREE, HAS_COPIES};
use crate::search::{Neighbor, Scored, SearchScratch};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

/// Result list size of the layer-1 search that seeds layer 0.
const LAYER1_EF: usize = 16;

/// Nodes whose own label a filtered search never returns.
const GONE: u32 = DELETED | FREE;

/// A distance ordered for heaps (distances are never NaN: queries and vectors are finite).
#[derive(PartialEq)]
struct OrdF32(f32);

impl Eq for OrdF32 {}

impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One filtered search's shared state across its layers.
struct Walk<'a> {
    filter: &'a LabelFilter,
    max_distance: f32,
    ef: usize,
    budget: usize,
    /// The scratch's distance count when the search started.
    distances: u64,
    /// Neighbour lists read for two-hop steps.
    lists: usize,
    copies: Vec<u32>,
    hop: Vec<u32>,
    /// Distance and match of every node measured on layer 1 (see `avoids_query`).
    probe: Vec<(f32, bool)>,
}

/// What a graph strategy found: `None` when it passed its budget.
pub(super) struct Found {
    pub hits: Option<Vec<Neighbor>>,
    pub visited: usize,
}

impl Hnsw {
    /// True when node `n` or one of its copies carries a label of `filter`.
    #[inline]
    fn node_matches(&self, n: u32, filter: &LabelFilter, copies: &mut Vec<u32>) -> bool {
        let flags = self.store.flags(n).load(Ordering::Acquire);
        if flags & GONE == 0 && filter.contains(self.store.label(n)) {
            return true;
        }
        if flags & HAS_COPIES == 0 {
            return false;
        }
        copies.clear();
        self.copies_of(n, copies);
        copies.iter().any(|&c| self.copy_matches(c, filter))
    }

    #[inline]
    fn copy_matches(&self, c: u32, filter: &LabelFilter) -> bool {
        !self.store.has_state(c, GONE) && filter.contains(self.store.label(c))
    }

    /// Greedy descent to layer 1, a filtered search of layer 1 whose matching results (and
    /// the nearest node seen) seed layer 0, then the filtered search of layer 0. Seeding from
    /// layer 1 matters when the filter avoids the query's neighbourhood: layer 1's longer links
    /// reach the nearest matching region, where a walk out of the query's own cluster on layer 0
    /// may take the wrong exit. Gives up (hits `None`) once more than `budget` nodes were touched.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn search_filtered(
        &self,
        s: &mut SearchScratch,
        q: &Query,
        ef: usize,
        filter: &LabelFilter,
        max_distance: f32,
        two_hop: bool,
        budget: usize,
    ) -> Found {
        let Some((entry, top)) = self.entry() else {
            return Found {
                hits: Some(Vec::new()),
                visited: 0,
            };
        };
        let mut walk = Walk {
            filter,
            max_distance,
            ef,
            budget,
            distances: s.distances,
            lists: 0,
            copies: std::mem::take(&mut s.selected_ids),
            hop: std::mem::take(&mut s.pending),
            probe: Vec::new(),
        };
        let mut cur = Scored {
            dist: self.dist_to(q, entry),
            id: entry,
        };
        s.distances += 1;
        for level in (2..=top).rev() {
            cur = self.greedy(s, q, cur, level);
        }
        let mut seeds = vec![cur];
        let mut completed = true;
        if top >= 1 {
            // Layer 1 only seeds layer 0: a short result list is enough, and cheaper.
            walk.ef = ef.min(LAYER1_EF);
            let (done, nearest) = self.filtered_layer(s, q, &seeds, 1, false, &mut walk);
            walk.ef = ef;
            completed = done && !self.avoids_query(&mut walk.probe, filter.len());
            seeds.clear();
            seeds.push(nearest);
            seeds.extend(s.results.drain().filter(|r| r.id != nearest.id));
        }
        if completed {
            completed = self.filtered_layer(s, q, &seeds, 0, two_hop, &mut walk).0;
        }
        let visited = (s.distances - walk.distances) as usize + walk.lists;
        let mut copies = std::mem::take(&mut walk.copies);
        let hits = completed.then(|| {
            s.sorted.clear();
            s.sorted.extend(s.results.drain());
            s.sorted.sort_unstable();
            let mut out = Vec::with_capacity(s.sorted.len());
            for c in &s.sorted {
                let flags = self.store.flags(c.id).load(Ordering::Acquire);
                if flags & GONE == 0 && filter.contains(self.store.label(c.id)) {
                    out.push(Neighbor {
                        label: self.store.label(c.id),
                        distance: c.dist,
                    });
                }
                if flags & HAS_COPIES != 0 {
                    copies.clear();
                    self.copies_of(c.id, &mut copies);
                    for &copy in &copies {
                        if self.copy_matches(copy, filter) {
                            out.push(Neighbor {
                                label: self.store.label(copy),
                                distance: c.dist,
                            });
                        }
                    }
                }
            }
            out
        });
        s.selected_ids = copies;
        s.pending = std::mem::take(&mut walk.hop);
        Found { hits, visited }
    }

    /// True when the filter avoids the query's neighbourhood: among the layer-1 nodes nearest
    /// the query, where about 3 should match if the filter ignored where rows lie, none does.
    /// The graph walk would then have to leave the query's region through whichever exit it
    /// finds first, and can miss the nearest matching region, so the exact pass answers.
    fn avoids_query(&self, probe: &mut [(f32, bool)], matches: usize) -> bool {
        let share = matches as f64 / (self.len() + self.retired_count()).max(1) as f64;
        let window = (3.0 / share.max(1e-9)).ceil() as usize;
        if share <= 0.0 || window > probe.len() {
            return false; // too few nodes measured to tell
        }
        probe.select_nth_unstable_by(window - 1, |a, b| a.0.total_cmp(&b.0));
        !probe[..window].iter().any(|p| p.1)
    }

    /// Best-first search of one layer from `seeds` whose result list (`s.results`) holds only
    /// matching nodes within the bound. With `two_hop`, non-matching neighbours are not
    /// measured: their own lists are searched for matching nodes instead. Returns whether it
    /// finished within the budget, and the nearest node it measured.
    fn filtered_layer(
        &self,
        s: &mut SearchScratch,
        q: &Query,
        seeds: &[Scored],
        level: usize,
        two_hop: bool,
        walk: &mut Walk<'_>,
    ) -> (bool, Scored) {
        let ef = walk.ef;
        let probing = level == 1;
        s.visited.reset(self.store.slots());
        s.candidates.clear();
        s.results.clear();
        let mut nearest = seeds[0];
        let mut worst = f32::INFINITY;
        // Under a distance bound, the ef nearest distances measured (matching or not) steer the
        // walk, since the results may never fill: a range search explores the ball around the
        // query plus the beam that leads to it.
        let bounded = walk.max_distance.is_finite();
        let mut near: BinaryHeap<OrdF32> = BinaryHeap::new();
        let mut near_worst = f32::INFINITY;
        // Keeps a measured node: a candidate while it may lead closer, a result if it matches.
        macro_rules! consider {
            ($n:expr, $d:expr, $matches:expr) => {
                if probing {
                    walk.probe.push(($d, $matches));
                }
                if $d < nearest.dist {
                    nearest = Scored { dist: $d, id: $n };
                }
                let mut keep = false;
                if bounded && (near.len() < ef || $d < near_worst) {
                    near.push(OrdF32($d));
                    if near.len() > ef {
                        near.pop();
                    }
                    if near.len() >= ef {
                        near_worst = near.peek().map_or(f32::INFINITY, |w| w.0);
                    }
                    keep = true;
                }
                let in_bound = $d <= walk.max_distance;
                if (s.results.len() < ef || $d < worst) && (!bounded || in_bound) {
                    keep = true;
                    if in_bound && $matches {
                        s.results.push(Scored { dist: $d, id: $n });
                        if s.results.len() > ef {
                            s.results.pop();
                        }
                        if s.results.len() >= ef {
                            worst = s.results.peek().map_or(f32::INFINITY, |w| w.dist);
                        }
                    }
                }
                if keep {
                    s.candidates.push(Reverse(Scored { dist: $d, id: $n }));
                }
            };
        }
        for &seed in seeds {
            if s.visited.insert(seed.id) {
                let matches = self.node_matches(seed.id, walk.filter, &mut walk.copies);
                consider!(seed.id, seed.dist, matches);
            }
        }
        while let Some(Reverse(c)) = s.candidates.pop() {
            if s.results.len() >= ef && c.dist > worst {
                break;
            }
            if bounded && c.dist > walk.max_distance && c.dist > near_worst {
                break; // beyond the bound and beyond the beam: nothing closer is left to find
            }
            if (s.distances - walk.distances) as usize + walk.lists > walk.budget {
                return (false, nearest);
            }
            self.read_links(s, c.id, level);
            let links = std::mem::take(&mut s.links);
            let mut matched_here = 0usize;
            for &n in &links {
                if !s.visited.insert(n) {
                    continue;
                }
                let matches = self.node_matches(n, walk.filter, &mut walk.copies);
                if matches || !two_hop {
                    let d = self.dist_to(q, n);
                    s.distances += 1;
                    matched_here += usize::from(matches);
                    consider!(n, d, matches);
                    continue;
                }
                if matched_here >= self.params.m0 {
                    continue; // enough matching neighbours for this node already (ACORN's cap)
                }
                // Walk through `n` without measuring it: its matching neighbours count as ours.
                walk.lists += 1;
                let words = self.store.links(n, level);
                let count = (words[0].load(Ordering::Acquire) as usize).min(words.len() - 1);
                walk.hop.clear();
                walk.hop
                    .extend(words[1..=count].iter().map(|w| w.load(Ordering::Acquire)));
                for i in 0..walk.hop.len() {
                    let w = walk.hop[i];
                    if !self.node_matches(w, walk.filter, &mut walk.copies) || !s.visited.insert(w)
                    {
                        continue;
                    }
                    let d = self.dist_to(q, w);
                    s.distances += 1;
                    matched_here += 1;
                    consider!(w, d, true);
                }
            }
            s.links = links;
        }
        (true, nearest)
    }

    /// The `ef` nearest labels of `filter` within `max_distance`, by exact distances over the
    /// stored vectors, closest first.
    pub(super) fn exact_filtered(
        &self,
        q: &Query,
        ef: usize,
        filter: &LabelFilter,
        max_distance: f32,
    ) -> Vec<Neighbor> {
        let mut best: BinaryHeap<Scored> = BinaryHeap::with_capacity(ef + 1);
        let mut offer = |id: u32| {
            if self.store.has_state(id, GONE) {
                return;
            }
            let dist = self.dist_to(q, id);
            if dist > max_distance {
                return;
            }
            let scored = Scored { dist, id };
            if best.len() < ef {
                best.push(scored);
            } else if best.peek().is_some_and(|worst| scored < *worst) {
                best.pop();
                best.push(scored);
            }
        };
        // Looking each label up beats a pass over all slots even for most rows: the pass reads
        // every node's record, the lookups only the matching ones (measured, benches/filtered.rs).
        filter.for_each(|label| {
            if let Some(id) = self.slot_of(label) {
                offer(id);
            }
        });
        best.into_sorted_vec()
            .into_iter()
            .map(|c| Neighbor {
                label: self.store.label(c.id),
                distance: c.dist,
            })
            .collect()
    }
}
