//! `Health::unreachable` must count every row no search can return: a database checks that any
//! row a search for its own vector misses (at an ef that walks the whole graph) is reported
//! unreachable until a relink. A row pruned from every layer-0 list but still linked on an
//! upper layer was counted reachable, because the walk followed upper-layer links too, while
//! searches only descend those greedily (found by the kill -9 reliability run: after reopening,
//! such a row was missed by hnsw_search and not reported).

mod common;

use common::gaussian;
use hnsw::{Hnsw, MetricKind, Params};

/// Rows whose own vector does not find them first at an ef that visits every reachable node.
fn lost_rows(index: &Hnsw, data: &[f32], dim: usize, labels: &[u64]) -> Vec<u64> {
    let ef = index.len().max(64);
    labels
        .iter()
        .copied()
        .filter(|&label| {
            let i = label as usize;
            let own = index.search(&data[i * dim..(i + 1) * dim], 1, ef).unwrap();
            own.first().map(|hit| hit.label) != Some(label)
        })
        .collect()
}

/// Builds a graph the way the database grows an index: a first half (relinked, as CREATE INDEX
/// does), then commits of 28 rows with no relink after them (one runs only after 10 % growth or
/// at a checkpoint). Single-threaded, so the graph is the same on every run.
fn grown(data: &[f32], dim: usize, m: usize) -> Hnsw {
    let params = Params::builder(MetricKind::L2sq, dim)
        .m(m)
        .ef_construction(64)
        .build()
        .unwrap();
    let mut index = Hnsw::new(params).unwrap();
    let n = data.len() / dim;
    index.insert_numbered(&data[..n / 2 * dim], 0, 1).unwrap();
    index.relink();
    let mut next = n / 2;
    while next < n {
        let end = (next + 28).min(n);
        let labels: Vec<u64> = (next as u64..end as u64).collect();
        index
            .insert_batch(&data[next * dim..end * dim], &labels, 1)
            .unwrap();
        next = end;
    }
    index
}

#[test]
fn every_row_a_search_misses_is_reported_unreachable() {
    let mut saw_lost = false;
    // M = 8 is the reliability run's; M = 4 cuts more rows off.
    for (dim, m, seed) in [
        (32, 8, 1u64),
        (32, 8, 5),
        (32, 4, 1),
        (32, 4, 3),
        (16, 4, 3),
    ] {
        let n = 2_000;
        let data = gaussian(n, dim, seed);
        let mut index = grown(&data, dim, m);
        let labels: Vec<u64> = (0..n as u64).collect();
        let health = index.health();
        assert_eq!(health.live, n as u64);
        let lost = lost_rows(&index, &data, dim, &labels);
        assert!(
            lost.len() as u64 <= health.unreachable,
            "dim={dim} m={m} seed={seed}: searches miss rows {:?} ({}), health reports {} \
             unreachable",
            &lost[..lost.len().min(10)],
            lost.len(),
            health.unreachable
        );
        // The count is not a blanket one either: every row it reports, searches miss.
        assert!(
            health.unreachable <= lost.len() as u64,
            "dim={dim} m={m} seed={seed}: {} reported, {} missed",
            health.unreachable,
            lost.len()
        );
        saw_lost |= !lost.is_empty();
        // Relinking (a checkpoint) makes every row found again, and the report agrees.
        index.relink();
        assert_eq!(index.health().unreachable, 0, "dim={dim} m={m} seed={seed}");
        assert!(
            lost_rows(&index, &data, dim, &labels).is_empty(),
            "dim={dim} m={m} seed={seed}: rows missed after relink"
        );
    }
    assert!(
        saw_lost,
        "no case left a row that searches miss: nothing was checked"
    );
}
