//! Keeping the graph healthy as rows change: the row transitions (`rows`), which retired rows
//! may be purged (`retirement`), compaction of deleted nodes (`compact`) and reachability
//! repair (`relink`), plus the policy that decides when the last two are worth their cost.

mod compact;
mod health;
mod relink;
mod retirement;
mod rows;

pub use compact::CompactStats;
pub use health::{Health, LayerHealth};
pub use retirement::RetirementLog;

use crate::graph::Hnsw;
use std::sync::atomic::Ordering;

/// Deleted nodes, as a percentage of live ones, at which [`Hnsw::compact_if_due`] compacts: they
/// still cost search time (they route but are never returned) and their slots wait for reuse.
pub const COMPACT_DELETED_PERCENT: usize = 10;
/// Growth, as a percentage of live nodes, after which [`Hnsw::relink_if_due`] relinks: a pass
/// reads every list, so it waits for enough inserts to have pruned some nodes off.
pub const RELINK_GROWTH_PERCENT: usize = 10;

impl Hnsw {
    /// Compacts (then relinks) once deleted nodes reach [`COMPACT_DELETED_PERCENT`] of the live
    /// ones, or whenever there are any if `force`; returns the slots freed.
    pub fn compact_if_due(&mut self, threads: usize, force: bool) -> usize {
        let deleted = self.deleted_count();
        if deleted == 0 || (!force && deleted * 100 < self.len() * COMPACT_DELETED_PERCENT) {
            return 0;
        }
        let reclaimed = self.compact(threads).reclaimed;
        self.relink(); // rebuilt lists can leave a node without in-links, as inserts can
        reclaimed
    }

    /// Relinks unreachable nodes once inserts since the last relink reach
    /// [`RELINK_GROWTH_PERCENT`] of the live nodes, or after any insert if `force`; returns the
    /// links added.
    pub fn relink_if_due(&mut self, force: bool) -> usize {
        let inserted = self.inserted_since_relink.load(Ordering::Relaxed);
        if inserted == 0 || (!force && inserted * 100 < self.len() * RELINK_GROWTH_PERCENT) {
            return 0;
        }
        self.relink()
    }

    /// Retires the labels one commit deleted (see [`Hnsw::retire`]) and logs them under the
    /// database's `last_commit` id; returns how many were searchable.
    pub fn retire_batch(&self, labels: &[u64], last_commit: u64) -> usize {
        let retired: Vec<u64> = labels.iter().copied().filter(|&l| self.retire(l)).collect();
        let count = retired.len();
        self.retirements().record(retired, last_commit);
        count
    }

    /// Purges the retired labels no active snapshot can see any more (see [`RetirementLog`]);
    /// returns how many.
    pub fn purge_retired(
        &self,
        last_commit: u64,
        snapshot_predates: impl Fn(u64) -> bool,
    ) -> usize {
        let labels = self
            .retirements()
            .take_purgeable(last_commit, snapshot_predates);
        labels.into_iter().filter(|&l| self.purge(l)).count()
    }
}
