//! MVCC retirement: rows a commit deletes stay candidates while older snapshots may read them,
//! and are purged once none can. The oracle is a list of which snapshots are open.

use hnsw::{Hnsw, MetricKind, Params, RetirementLog};

#[test]
fn a_batch_waits_for_its_commit_and_for_older_snapshots() {
    let mut log = RetirementLog::new();
    // Commit 5 is the last one while the deleting commit runs.
    log.record(vec![1, 2, 3], 5);
    // The deleting commit has not finished: the last commit is still 5.
    assert!(log.take_purgeable(5, |_| false).is_empty());
    // It committed (last commit 6) but a snapshot from before it is open.
    assert!(log.take_purgeable(6, |commit| commit >= 6).is_empty());
    // That snapshot ended.
    assert_eq!(log.take_purgeable(7, |_| false), vec![1, 2, 3]);
    assert_eq!(log.pending(), 0);
}

#[test]
fn batches_are_purged_in_order_and_the_latest_retirement_of_a_label_wins() {
    let mut log = RetirementLog::new();
    log.record(vec![10, 11], 1);
    // Label 10 re-appended after an undone delete and deleted again by a later commit.
    log.record(vec![10, 12], 3);
    log.record(Vec::new(), 4); // an empty batch is not recorded
                               // Both commits are known (last commit 5); a snapshot older than commit 5 is open, so the
                               // first batch (bounded by 5 as well) waits too.
    assert!(log.take_purgeable(5, |commit| commit >= 5).is_empty());
    // Every snapshot ended: the first batch purges only 11 (10 belongs to the second now).
    assert_eq!(log.take_purgeable(5, |_| false), vec![11, 10, 12]);
    assert_eq!(log.pending(), 0);
}

#[test]
fn an_index_purges_retired_rows_only_when_no_snapshot_needs_them() {
    let dim = 8;
    let index = Hnsw::new(Params::builder(MetricKind::L2sq, dim).build().unwrap()).unwrap();
    let data: Vec<f32> = (0..100 * dim).map(|i| ((i * 37) % 101) as f32).collect();
    index.insert_numbered(&data, 0, 1).unwrap();
    assert_eq!(
        index.retire_batch(&[4, 5, 6, 1_000], 20),
        3,
        "1,000 was never inserted"
    );
    assert_eq!((index.len(), index.retired_count()), (97, 3));
    assert_eq!(
        index.purge_retired(20, |_| false),
        0,
        "the deleting commit has not ended"
    );
    assert_eq!(
        index.purge_retired(21, |commit| commit >= 21),
        0,
        "an older snapshot is open"
    );
    assert_eq!(index.purge_retired(22, |_| false), 3);
    assert_eq!(
        (index.len(), index.retired_count(), index.deleted_count()),
        (97, 0, 3)
    );
}
