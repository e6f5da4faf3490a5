//! Which retired rows may be purged: a database deletes rows at the deleting commit, while
//! transactions that started earlier may still read them. The rows stay retired (candidates for
//! those readers) until no active snapshot predates the deleting commit.
//!
//! The log knows commits only as the database's commit ids (u64, increasing). The deleting
//! commit's own id is not known when its rows are retired: the log records the last commit
//! before it, and any later last-commit id bounds the deleting commit from above (commits are
//! serialized, so a changed last commit means the delete committed).

use std::collections::{HashMap, VecDeque};

/// Rows retired by one commit.
struct Batch {
    /// The database's last commit when the rows were retired (during the deleting commit).
    last_commit_before: u64,
    /// A commit id at or after the deleting commit, once one is known.
    deleted_by: Option<u64>,
    /// Number of this batch, to tell its rows from later retirements of the same labels.
    id: u64,
    labels: Vec<u64>,
}

/// Retired labels by deleting commit, oldest first.
#[derive(Default)]
pub struct RetirementLog {
    batches: VecDeque<Batch>,
    /// The batch that retired each label last (a row re-appended after an undone delete and
    /// deleted again must wait for its newer batch).
    latest: HashMap<u64, u64>,
    next_batch: u64,
}

impl RetirementLog {
    /// An empty log.
    pub fn new() -> RetirementLog {
        RetirementLog::default()
    }

    /// Records the labels one commit retired; `last_commit` is the database's last commit id
    /// while that commit runs.
    pub fn record(&mut self, labels: Vec<u64>, last_commit: u64) {
        if labels.is_empty() {
            return;
        }
        self.next_batch += 1;
        for &label in &labels {
            self.latest.insert(label, self.next_batch);
        }
        self.batches.push_back(Batch {
            last_commit_before: last_commit,
            deleted_by: None,
            id: self.next_batch,
            labels,
        });
    }

    /// Labels no active snapshot can see any more, in retirement order, removed from the log.
    /// `last_commit` is the database's last commit id now; `snapshot_predates(c)` is true while
    /// some active transaction started before commit `c`.
    pub fn take_purgeable(
        &mut self,
        last_commit: u64,
        snapshot_predates: impl Fn(u64) -> bool,
    ) -> Vec<u64> {
        for batch in &mut self.batches {
            if batch.deleted_by.is_none() && last_commit != batch.last_commit_before {
                batch.deleted_by = Some(last_commit);
            }
        }
        let mut purgeable = Vec::new();
        while let Some(batch) = self.batches.front() {
            match batch.deleted_by {
                Some(commit) if !snapshot_predates(commit) => {}
                _ => break, // later batches were deleted later still
            }
            let batch = self.batches.pop_front().expect("front exists");
            for label in batch.labels {
                if self.latest.get(&label) == Some(&batch.id) {
                    self.latest.remove(&label);
                    purgeable.push(label);
                }
            }
        }
        purgeable
    }

    /// Retired labels the log still waits on.
    pub fn pending(&self) -> usize {
        self.latest.len()
    }
}
