//! Identical vectors must not cut other rows off the graph: a learning database stores the same
//! embedding again and again (the same task text, run many times). The oracle is the row's own
//! vector: a search for it must return the row (its distance is 0, no other distinct row ties).

mod common;

use common::{gaussian, Rng};
use hnsw::{Hnsw, MetricKind, Params};

/// Rows whose own vector does not find them among the k=10 nearest at the default ef.
fn missed(
    index: &Hnsw,
    data: &[f32],
    dim: usize,
    rows: impl Iterator<Item = usize>,
) -> (usize, usize) {
    let mut total = 0;
    let mut missed = 0;
    for row in rows {
        total += 1;
        let hits = index
            .search(&data[row * dim..(row + 1) * dim], 10, 64)
            .unwrap();
        if !hits.iter().any(|h| h.label == row as u64) {
            missed += 1;
        }
    }
    (missed, total)
}

/// Builds as the database does: rows in table order, then a relink.
fn build(metric: MetricKind, data: &[f32], dim: usize, threads: usize) -> Hnsw {
    let mut index = Hnsw::new(Params::builder(metric, dim).build().unwrap()).unwrap();
    index.insert_numbered(data, 0, threads).unwrap();
    index.relink();
    index
}

#[test]
fn distinct_rows_after_ten_thousand_copies_of_one_vector_are_found() {
    let dim = 64;
    let copies = 10_000;
    let distinct = gaussian(200, dim, 5);
    let mut data = Vec::with_capacity((copies + 200) * dim);
    for _ in 0..copies {
        data.extend_from_slice(&distinct[..dim]);
    }
    data.extend_from_slice(&distinct);
    for metric in [MetricKind::L2sq, MetricKind::Cosine] {
        for threads in [1, 2] {
            let index = build(metric, &data, dim, threads);
            let (missed, total) = missed(&index, &data, dim, copies + 1..copies + 200);
            assert!(
                missed * 200 <= total,
                "{metric:?}, {threads} threads: {missed} of {total} distinct rows not found by their own vector"
            );
        }
    }
}

#[test]
fn distinct_rows_among_copies_of_a_few_hundred_vectors_are_found() {
    // Half the rows are copies of 300 vectors (about 17 each), shuffled among distinct rows.
    let dim = 48;
    let rows = 12_000;
    let base = gaussian(300, dim, 6);
    let fresh = gaussian(rows / 2, dim, 7);
    let mut rng = Rng::new(8);
    let mut order: Vec<usize> = (0..rows).collect();
    for i in (1..rows).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut data = vec![0.0f32; rows * dim];
    let mut unique = Vec::new();
    for (slot, &i) in order.iter().enumerate() {
        let v = if i < rows / 2 {
            &base[(i % 300) * dim..(i % 300 + 1) * dim]
        } else {
            unique.push(slot);
            &fresh[(i - rows / 2) * dim..(i - rows / 2 + 1) * dim]
        };
        data[slot * dim..(slot + 1) * dim].copy_from_slice(v);
    }
    for metric in [MetricKind::L2sq, MetricKind::Cosine] {
        let index = build(metric, &data, dim, 2);
        let (missed, total) = missed(&index, &data, dim, unique.iter().copied());
        assert!(
            missed * 200 <= total,
            "{metric:?}: {missed} of {total} distinct rows not found by their own vector"
        );
    }
}

#[test]
fn copies_come_back_beside_their_owner_and_follow_every_row_transition() {
    let dim = 16;
    let mut data = gaussian(500, dim, 9);
    let owner_row = 5usize;
    let own = data[owner_row * dim..(owner_row + 1) * dim].to_vec();
    for _ in 0..20 {
        data.extend_from_slice(&own);
    }
    let mut index = Hnsw::new(Params::builder(MetricKind::L2sq, dim).build().unwrap()).unwrap();
    index.insert_numbered(&data[..500 * dim], 0, 1).unwrap();
    let copies: Vec<u64> = (1_000..1_020).collect();
    for &label in &copies {
        index.insert(label, &own).unwrap();
    }
    let found = |index: &Hnsw, k: usize| -> Vec<u64> {
        let mut labels: Vec<u64> = index
            .search(&own, k, 64)
            .unwrap()
            .iter()
            .filter(|n| n.distance == 0.0)
            .map(|n| n.label)
            .collect();
        labels.sort_unstable();
        labels
    };
    let mut all = vec![owner_row as u64];
    all.extend(&copies);
    assert_eq!(
        found(&index, 30),
        all,
        "the owner and its 20 copies, at distance 0"
    );
    assert_eq!(index.len(), 520);

    // The owner deleted: its copies are still found.
    assert!(index.delete(owner_row as u64));
    assert_eq!(found(&index, 30), copies);
    // A retired copy is hidden from searches, still a candidate for older snapshots.
    assert!(index.retire(1_000));
    assert_eq!(found(&index, 30), copies[1..].to_vec());
    assert!(index
        .search_candidates(&own, 30, 64)
        .unwrap()
        .iter()
        .any(|n| n.label == 1_000));

    // Compaction keeps the node in the graph under a copy's row and frees a copy's slot.
    let stats = index.compact(1);
    assert_eq!(stats.reclaimed, 1);
    assert_eq!(
        (index.len(), index.retired_count(), index.deleted_count()),
        (518, 1, 0)
    );
    assert_eq!(found(&index, 30), copies[1..].to_vec());
    assert!(index.is_retired(1_000) && index.purge(1_000));
    index.compact(1);
    assert_eq!(found(&index, 30), copies[1..].to_vec());

    // A stored image keeps the copies.
    let loaded = common::from_image(&common::image(&index)).unwrap();
    assert_eq!(common::image(&loaded), common::image(&index));
    assert_eq!(found(&loaded, 30), copies[1..].to_vec());
    // Every other row is still found by its own vector.
    let (missed, total) = missed(&loaded, &data, dim, (0..500).filter(|&r| r != owner_row));
    assert_eq!((missed, total), (0, 499));
}

#[test]
fn images_of_format_version_3_still_load() {
    // Version 3 had no copies; the same bytes with version 3 in the header must load.
    let dim = 8;
    let data = gaussian(300, dim, 10);
    let index = build(MetricKind::L2sq, &data, dim, 1);
    let mut bytes = common::image(&index);
    // Float32 images are written as version 4 (version 5 added int8 codes).
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 4);
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    let checksum = hnsw::format::checksum64(&bytes[..104]);
    bytes[104..112].copy_from_slice(&checksum.to_le_bytes());
    let loaded = common::from_image(&bytes).unwrap();
    assert_eq!(loaded.len(), 300);
    let (missed, total) = missed(&loaded, &data, dim, 0..300);
    assert_eq!((missed, total), (0, 300));
}
