//! An index's health report: how full its neighbour lists are per layer, which live rows a search
//! can no longer reach, how much of it is deleted or retired, and where its memory goes.

use super::COMPACT_DELETED_PERCENT;
use crate::graph::{Hnsw, COPY, DELETED, FREE, RETIRED};
use crate::search::{Scored, SearchScratch};
use std::sync::atomic::Ordering;

/// Out-degree of the nodes on one layer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerHealth {
    /// Nodes with a list on this layer (deleted and retired ones included: searches walk them).
    pub nodes: u64,
    pub degree_min: u32,
    pub degree_max: u32,
    pub degree_mean: f64,
    /// The list capacity on this layer (m0 on layer 0, m above).
    pub capacity: u32,
}

/// What [`Hnsw::health`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// Layer 0 first.
    pub layers: Vec<LayerHealth>,
    /// Searchable rows (neither deleted nor retired) that a search for their own vector does not
    /// return, however large its ef: rows the layer-0 lists do not reach from the entry point
    /// (which relinking repairs) nor from where that search's descent of the upper layers lands.
    /// (A row linked on upper layers only is one: searches descend those greedily.) A close
    /// estimate: rows layer 0 reaches from the entry point are taken as found, and rows left when
    /// the walk's budget runs out are counted.
    pub unreachable: u64,
    pub live: u64,
    pub deleted: u64,
    pub retired: u64,
    /// Slots freed by compaction, waiting for reuse.
    pub free_slots: u64,
    /// Copies of identical vectors (found through their owner, not by walking).
    pub copies: u64,
    pub vector_bytes: u64,
    pub link_bytes: u64,
    pub label_bytes: u64,
    /// Deleted nodes reached the share at which a checkpoint compacts them
    /// ([`COMPACT_DELETED_PERCENT`]); until then searches still walk them.
    pub compaction_due: bool,
    /// At least half the slots are free after compaction: only a rebuild returns their memory.
    pub rebuild_advised: bool,
}

/// Layer-0 lists read per slot, at most, to tell which cut-off nodes a search still finds (see
/// [`Health::unreachable`]); a sparse graph with a third of its nodes cut off needed 16.
const UNREACHABLE_WALK_BUDGET: usize = 64;

impl Hnsw {
    /// Walks every node once, layer 0 once from the entry point, and, for the rows that walk
    /// misses, their searches' descents and layer-0 walks; readers may run meanwhile.
    pub fn health(&self) -> Health {
        let slots = self.store.slots();
        // One read of the entry point: the layer count and the walk agree even if it moves.
        let entry = self.entry();
        let top = entry.map_or(0, |(_, level)| level);
        let params = self.params();
        let mut layers: Vec<LayerHealth> = (0..=top)
            .map(|level| LayerHealth {
                degree_min: u32::MAX,
                capacity: if level == 0 { params.m0 } else { params.m } as u32,
                ..LayerHealth::default()
            })
            .collect();
        let mut degree_sum = vec![0u64; top + 1];
        let mut report = Health::default();
        for id in 0..slots as u32 {
            let flags = self.store.flags(id).load(Ordering::Acquire);
            if flags & FREE != 0 {
                report.free_slots += 1;
                continue;
            }
            if flags & COPY != 0 {
                report.copies += 1;
            } else if flags & DELETED != 0 {
                report.deleted += 1;
            } else if flags & RETIRED != 0 {
                report.retired += 1;
            } else {
                report.live += 1;
            }
            for level in 0..=self.store.level(id).min(top) {
                let words = self.store.links(id, level);
                let degree =
                    (words[0].load(Ordering::Acquire) as usize).min(words.len() - 1) as u32;
                let layer = &mut layers[level];
                layer.nodes += 1;
                layer.degree_min = layer.degree_min.min(degree);
                layer.degree_max = layer.degree_max.max(degree);
                degree_sum[level] += u64::from(degree);
            }
        }
        for (layer, sum) in layers.iter_mut().zip(degree_sum) {
            if layer.nodes == 0 {
                layer.degree_min = 0;
            } else {
                layer.degree_mean = sum as f64 / layer.nodes as f64;
            }
        }
        report.layers = if entry.is_some() { layers } else { Vec::new() };
        report.unreachable = entry.map_or(0, |entry| self.unreachable_live(entry, slots));
        report.vector_bytes = (slots * self.params.quantization.code_bytes(self.dim())) as u64;
        report.link_bytes = (slots * (1 + params.m0) * 4 + self.store.upper_bytes()) as u64;
        report.label_bytes = (self.memory_bytes() - self.store.memory_bytes()) as u64;
        report.compaction_due = report.deleted > 0
            && report.deleted * 100 >= report.live * COMPACT_DELETED_PERCENT as u64;
        report.rebuild_advised =
            report.free_slots > 0 && report.free_slots >= report.live + report.copies;
        report
    }

    /// Searchable nodes a search for their own vector misses (see [`Health::unreachable`]), from
    /// the entry point and its level.
    ///
    /// A search descends the upper layers greedily, then walks layer 0 from where it landed: a
    /// node is found exactly when layer 0 leads there from that landing node. Upper-layer links
    /// alone do not make a node findable (a node pruned from every layer-0 list is returned only
    /// if the descent ends on it). The nodes layer 0 reaches from the entry point are taken as
    /// found (relinking keeps every node among them); each other node is checked: its descent,
    /// then a layer-0 walk from the landing node (one per landing node) through the nodes outside
    /// that set (the set is closed: a path into it never leaves it). Past a budget of walked
    /// nodes (a badly cut graph), the nodes left count as unreachable, as relinking counts them.
    fn unreachable_live(&self, (entry, top): (u32, usize), slots: usize) -> u64 {
        let mut s = SearchScratch::new();
        // (Slots a concurrent insert appends lie beyond `slots`: the walks skip them.)
        let mut near_entry = vec![false; slots];
        let mut walked = Vec::new();
        let nothing = vec![false; slots];
        let mut unlimited = usize::MAX;
        self.walk_layer0_outside(
            &mut s,
            entry,
            &nothing,
            &mut near_entry,
            &mut walked,
            &mut unlimited,
        );
        walked.clear();
        // (landing node, node) of every searchable node outside the entry's layer-0 reach.
        let mut cut_off: Vec<(u32, u32)> = (0..slots as u32)
            .filter(|&id| {
                !near_entry[id as usize]
                    && !self.store.has_state(id, DELETED | RETIRED | FREE | COPY)
            })
            .map(|id| (self.descent_end(&mut s, id, entry, top), id))
            .collect();
        cut_off.sort_unstable();
        let mut seen = nothing;
        let mut budget = slots.saturating_mul(UNREACHABLE_WALK_BUDGET);
        let mut unreachable = 0;
        for group in cut_off.chunk_by(|a, b| a.0 == b.0) {
            let start = group[0].0;
            if near_entry.get(start as usize) == Some(&false) {
                self.walk_layer0_outside(
                    &mut s,
                    start,
                    &near_entry,
                    &mut seen,
                    &mut walked,
                    &mut budget,
                );
            }
            unreachable += group.iter().filter(|&&(_, id)| !seen[id as usize]).count() as u64;
            for &id in &walked {
                seen[id as usize] = false;
            }
            walked.clear();
        }
        unreachable
    }

    /// Where a search for node `id`'s own vector, descending the upper layers from `entry` (on
    /// layer `top`) as every search does, starts its layer-0 walk.
    fn descent_end(&self, s: &mut SearchScratch, id: u32, entry: u32, top: usize) -> u32 {
        let q = self.node_query(id);
        let mut cur = Scored {
            dist: self.dist_to(&q, entry),
            id: entry,
        };
        for level in (1..=top).rev() {
            cur = self.greedy(s, &q, cur, level);
        }
        cur.id
    }

    /// Marks in `seen` (and lists in `walked`) `start` and the nodes a layer-0 walk from it
    /// reaches without entering `skip`; each node walked costs one unit of `budget`, and the walk
    /// stops when it runs out.
    fn walk_layer0_outside(
        &self,
        s: &mut SearchScratch,
        start: u32,
        skip: &[bool],
        seen: &mut [bool],
        walked: &mut Vec<u32>,
        budget: &mut usize,
    ) {
        if start as usize >= seen.len() {
            return;
        }
        seen[start as usize] = true;
        walked.push(start);
        let mut next = walked.len() - 1;
        while next < walked.len() && *budget > 0 {
            *budget -= 1;
            self.read_links(s, walked[next], 0);
            next += 1;
            for &n in &s.links {
                if (n as usize) < seen.len() && !seen[n as usize] && !skip[n as usize] {
                    seen[n as usize] = true;
                    walked.push(n);
                }
            }
        }
    }
}
