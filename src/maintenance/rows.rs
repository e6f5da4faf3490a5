//! A row's transitions in the graph: live → deleted (a tombstone searches skip), live → retired
//! (hidden from new readers, still a candidate for older snapshots) → deleted. Compaction
//! (`compact.rs`) turns deleted nodes into free slots.

use crate::graph::{Hnsw, DELETED};
use std::sync::atomic::Ordering;

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
}
