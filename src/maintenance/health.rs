//! An index's health report: how full its neighbour lists are per layer, which live rows a search
//! can no longer reach, how much of it is deleted or retired, and where its memory goes.

use super::COMPACT_DELETED_PERCENT;
use crate::graph::{Hnsw, COPY, DELETED, FREE, RETIRED};
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
    /// Searchable rows (neither deleted nor retired) that no walk from the entry point reaches,
    /// on any layer: no query's search can return them.
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

impl Hnsw {
    /// Walks every node once (and the graph once from the entry point); readers may run meanwhile.
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
        report.unreachable =
            report.live - entry.map_or(0, |(id, _)| self.reachable_live(id, slots));
        report.vector_bytes = (slots * self.params.quantization.code_bytes(self.dim())) as u64;
        report.link_bytes = (slots * (1 + params.m0) * 4 + self.store.upper_bytes()) as u64;
        report.label_bytes = (self.memory_bytes() - self.store.memory_bytes()) as u64;
        report.compaction_due = report.deleted > 0
            && report.deleted * 100 >= report.live * COMPACT_DELETED_PERCENT as u64;
        report.rebuild_advised =
            report.free_slots > 0 && report.free_slots >= report.live + report.copies;
        report
    }

    /// Searchable nodes a walk from the entry point reaches along the lists of every layer
    /// (queries descend to different layer-0 starts), through any node (searches walk through
    /// deleted and retired ones too).
    fn reachable_live(&self, entry: u32, slots: usize) -> u64 {
        let mut seen = vec![false; slots];
        let mut queue = vec![entry];
        seen[entry as usize] = true;
        let mut live = 0;
        while let Some(id) = queue.pop() {
            if !self.store.has_state(id, DELETED | RETIRED | FREE | COPY) {
                live += 1;
            }
            for level in 0..=self.store.level(id) {
                let words = self.store.links(id, level);
                let count = (words[0].load(Ordering::Acquire) as usize).min(words.len() - 1);
                for w in &words[1..=count] {
                    let n = w.load(Ordering::Acquire);
                    if (n as usize) < slots && !seen[n as usize] {
                        seen[n as usize] = true;
                        queue.push(n);
                    }
                }
            }
        }
        live
    }
}
