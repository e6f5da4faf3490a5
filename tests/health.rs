//! The health report against independent counts: searches (a row its own search finds is
//! reachable; after relinking a search asking for every node finds them all), the rows deleted,
//! and the parameters' list sizes.

mod common;

use common::{clustered, gaussian};
use hnsw::{Hnsw, MetricKind, Params};

fn build(data: &[f32], dim: usize) -> Hnsw {
    build_with(data, dim, 16)
}

fn build_with(data: &[f32], dim: usize, m: usize) -> Hnsw {
    let params = Params::builder(MetricKind::L2sq, dim)
        .m(m)
        .m0(2 * m)
        .ef_construction(16)
        .build()
        .unwrap();
    let index = Hnsw::new(params).unwrap();
    index.insert_numbered(data, 0, 2).unwrap();
    index
}

#[test]
fn unreachable_rows_are_bounded_by_what_searches_miss() {
    let mut saw_unreachable = false;
    // Sparse lists (m = 2) on tight clusters leave rows behind; m = 16 should not.
    for (n, dim, m, seed) in [(5_000, 8, 2, 3u64), (5_000, 16, 2, 1), (3_000, 32, 16, 7)] {
        let data = clustered(n, dim, 64, seed);
        let mut index = build_with(&data, dim, m);
        let health = index.health();
        assert_eq!(health.live, n as u64);
        let missed = (0..n)
            .filter(|&i| {
                let own = index.search(&data[i * dim..(i + 1) * dim], 1, 64).unwrap();
                own.first().map(|hit| hit.label) != Some(i as u64)
            })
            .count() as u64;
        assert!(
            health.unreachable <= missed,
            "n={n} dim={dim} m={m}: {} > {missed}",
            health.unreachable
        );
        saw_unreachable |= health.unreachable > 0;
        index.relink();
        let found = index.search(&data[..dim], n, n).unwrap().len() as u64;
        let after = index.health().unreachable;
        assert!(
            after <= n as u64 - found,
            "n={n} dim={dim} m={m}: {after} after relink"
        );
        assert!(
            after <= health.unreachable,
            "relinking cut rows off: {} -> {after}",
            health.unreachable
        );
        if m >= 16 {
            assert_eq!(after, 0, "n={n} dim={dim} m={m}");
        }
    }
    assert!(
        saw_unreachable,
        "no case left a row unreachable: the count was not exercised"
    );
}

#[test]
fn layers_degrees_states_and_bytes() {
    let (n, dim) = (4_000, 24);
    let data = gaussian(n, dim, 11);
    let mut index = build(&data, dim);
    let params = *index.params();
    let health = index.health();
    assert_eq!(health.layers.len(), index.layer_count());
    assert_eq!(health.layers[0].nodes, n as u64);
    assert_eq!(health.layers[0].capacity as usize, params.m0);
    for (level, layer) in health.layers.iter().enumerate() {
        assert!(layer.degree_min <= layer.degree_max && layer.degree_max <= layer.capacity);
        assert!(
            layer.degree_mean >= layer.degree_min as f64
                && layer.degree_mean <= layer.degree_max as f64
        );
        if level > 0 {
            assert_eq!(layer.capacity as usize, params.m);
            assert!(layer.nodes <= health.layers[level - 1].nodes);
        }
    }
    assert!(health.layers[0].degree_mean > 4.0);
    assert_eq!(health.vector_bytes, (n * dim * 4) as u64);
    assert!(health.link_bytes >= (n * (1 + params.m0) * 4) as u64);
    assert!(health.label_bytes > 0);
    assert!(
        health.vector_bytes + health.link_bytes + health.label_bytes
            <= index.memory_bytes() as u64 * 2
    );

    for label in (0..n as u64).step_by(4) {
        assert!(index.delete(label));
    }
    let health = index.health();
    assert_eq!(
        (health.live, health.deleted, health.free_slots),
        (3_000, 1_000, 0)
    );
    // A third of the live rows deleted: past the compaction share, nothing freed yet.
    assert!(health.compaction_due && !health.rebuild_advised);
    index.compact(1);
    let health = index.health();
    assert_eq!(
        (health.live, health.deleted, health.free_slots),
        (3_000, 0, 1_000)
    );
    assert_eq!(health.layers[0].nodes, 3_000);
    assert_eq!(health.unreachable, 0);
    // 1,000 free slots against 3,000 live rows: no rebuild needed.
    assert!(!health.compaction_due && !health.rebuild_advised);

    // Deleting all but 1,000 and compacting leaves 3,000 free slots: a rebuild would return them.
    for label in (0..n as u64).filter(|l| l % 4 != 0).skip(1_000) {
        assert!(index.delete(label));
    }
    index.compact(1);
    let health = index.health();
    assert_eq!((health.live, health.free_slots), (1_000, 3_000));
    assert!(!health.compaction_due && health.rebuild_advised);
}

#[test]
fn an_empty_index_reports_nothing() {
    let index = Hnsw::new(Params::builder(MetricKind::Cosine, 8).build().unwrap()).unwrap();
    let health = index.health();
    assert!(health.layers.is_empty());
    assert_eq!(
        (health.live, health.unreachable, health.vector_bytes),
        (0, 0, 0)
    );
}

#[test]
fn bytes_per_row_predicts_the_growth_of_memory() {
    // The bridge reserves rows × bytes_per_row from DuckDB before inserting: the estimate must
    // match what the inserts then add, for small and large M and dimensions.
    for (dim, m) in [(24, 16), (128, 8), (384, 32)] {
        let n = 6_000;
        let data = gaussian(2 * n, dim, 5);
        let index = build_with(&data[..n * dim], dim, m);
        let before = index.memory_bytes();
        index
            .insert_numbered(&data[n * dim..], n as u64, 2)
            .unwrap();
        let grown = (index.memory_bytes() - before) as f64;
        let predicted = (n * index.params().bytes_per_row()) as f64;
        assert!(
            (grown / predicted - 1.0).abs() < 0.05,
            "dim {dim}, M {m}: grew {grown} bytes, predicted {predicted}"
        );
    }
}
