//! Behaviour of the HNSW core against exact search (the oracle).

mod common;

use common::{clustered, exact_knn, from_image, gaussian, image, recall};
use hnsw::{Error, Hnsw, MetricKind, Params};

const DIM: usize = 128;

fn build(metric: MetricKind, data: &[f32], dim: usize, threads: usize) -> Hnsw {
    let params = Params::builder(metric, dim).build().unwrap();
    let index = Hnsw::new(params).unwrap();
    index.insert_numbered(data, 0, threads).unwrap();
    index
}

/// Mean recall@k of `index` over `queries` against exact search on the rows not skipped.
fn mean_recall(
    index: &Hnsw,
    data: &[f32],
    queries: &[f32],
    k: usize,
    ef: usize,
    skip: &dyn Fn(usize) -> bool,
) -> f64 {
    let dim = index.dim();
    let mut total = 0.0;
    let nq = queries.len() / dim;
    for q in queries.chunks_exact(dim) {
        let truth = exact_knn(index.metric(), data, dim, q, k, skip);
        let found: Vec<u64> = index
            .search(q, k, ef)
            .unwrap()
            .iter()
            .map(|n| n.label)
            .collect();
        assert!(
            found.iter().all(|&l| !skip(l as usize)),
            "returned a deleted label"
        );
        total += recall(&found, &truth);
    }
    total / nq as f64
}

fn split(n: usize, nq: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut all = clustered(n + nq, dim, 64, seed);
    let queries = all.split_off(n * dim);
    (all, queries)
}

#[test]
fn recall_at_10_on_20k_clustered_at_default_ef() {
    let (data, queries) = split(20_000, 200, DIM, 42);
    let index = build(MetricKind::L2sq, &data, DIM, 2);
    assert_eq!(index.len(), 20_000);
    let r = mean_recall(&index, &data, &queries, 10, 64, &|_| false);
    eprintln!("recall@10 l2sq ef=64: {r:.4}");
    assert!(r >= 0.95, "recall {r}");
}

#[test]
fn recall_for_cosine_and_inner_product() {
    for metric in [MetricKind::Cosine, MetricKind::Ip] {
        let (data, queries) = split(5_000, 100, 64, 9);
        let index = build(metric, &data, 64, 2);
        let r = mean_recall(&index, &data, &queries, 10, 64, &|_| false);
        eprintln!("recall@10 {metric:?}: {r:.4}");
        assert!(r >= 0.95, "{metric:?} recall {r}");
    }
}

#[test]
fn exact_vectors_find_themselves_first() {
    let data = gaussian(2_000, 32, 5);
    let index = build(MetricKind::L2sq, &data, 32, 1);
    for (i, v) in data.chunks_exact(32).enumerate().step_by(37) {
        let hit = index.search(v, 1, 64).unwrap()[0];
        assert_eq!(hit.label, i as u64);
        assert_eq!(hit.distance, 0.0);
    }
}

#[test]
fn deleted_labels_never_return_and_recall_holds_after_compaction() {
    let (data, queries) = split(20_000, 200, DIM, 77);
    let mut index = build(MetricKind::L2sq, &data, DIM, 2);
    let deleted = |i: usize| hnsw::hash::mix64(i as u64 ^ 0xdead) % 10 < 3; // ~30%
    let mut count = 0;
    for i in 0..20_000 {
        if deleted(i) {
            assert!(index.delete(i as u64));
            count += 1;
        }
    }
    let first = (0..20_000).find(|&i| deleted(i)).unwrap();
    assert!(
        !index.delete(first as u64),
        "a second delete must report absence"
    );
    assert_eq!(index.len(), 20_000 - count);
    assert_eq!(index.deleted_count(), count);
    // Before compaction: tombstones are skipped.
    let before = mean_recall(&index, &data, &queries, 10, 64, &deleted);
    let stats = index.compact(1);
    assert_eq!(stats.reclaimed, count);
    assert_eq!(index.deleted_count(), 0);
    let after = mean_recall(&index, &data, &queries, 10, 64, &deleted);
    eprintln!("deleted {count}: recall before compaction {before:.4}, after {after:.4}");
    assert!(after >= 0.95, "recall after compaction {after}");

    // Freed slots are reused by new inserts, which are then found.
    let slots = index.slot_count();
    for i in 0..1_000usize {
        let row = &data[i * DIM..(i + 1) * DIM];
        if deleted(i) {
            index.insert(i as u64, row).unwrap();
        }
    }
    assert_eq!(
        index.slot_count(),
        slots,
        "reinserts must reuse reclaimed slots"
    );
    for i in (0..1_000usize).filter(|&i| deleted(i)).take(50) {
        let row = &data[i * DIM..(i + 1) * DIM];
        assert_eq!(index.search(row, 1, 64).unwrap()[0].label, i as u64);
    }
}

#[test]
fn compaction_with_threads_repairs_exactly_as_one_thread() {
    // Each repair reads only its own list and deleted nodes' lists, so sharing the live nodes
    // between threads must give the very same graph as one thread.
    let data = clustered(6_000, 32, 8, 5);
    let index = build(MetricKind::L2sq, &data, 32, 2);
    for i in (0..6_000).filter(|i| i % 7 == 0 || i % 11 == 3) {
        index.delete(i);
    }
    let mut one = from_image(&image(&index)).unwrap();
    let mut four = from_image(&image(&index)).unwrap();
    let a = one.compact(1);
    let b = four.compact(4);
    assert_eq!(a, b);
    assert!(a.repaired_lists > 1_000, "{a:?}");
    assert_eq!(image(&one), image(&four));
}

#[test]
fn deleting_everything_leaves_an_empty_searchable_index() {
    let data = gaussian(500, 16, 3);
    let mut index = build(MetricKind::L2sq, &data, 16, 1);
    for i in 0..500 {
        assert!(index.delete(i));
    }
    assert!(index.search(&data[..16], 10, 64).unwrap().is_empty());
    index.compact(1);
    assert!(index.search(&data[..16], 10, 64).unwrap().is_empty());
    assert_eq!(index.layer_count(), 0);
    index.insert(7, &data[..16]).unwrap();
    assert_eq!(index.search(&data[..16], 10, 64).unwrap()[0].label, 7);
}

#[test]
fn serialization_round_trips_exactly() {
    let data = clustered(3_000, 24, 8, 1);
    let mut index = build(MetricKind::Cosine, &data, 24, 2);
    for i in (0..3_000).step_by(7) {
        index.delete(i);
    }
    index.compact(1);
    for i in (1..3_000).step_by(11) {
        index.delete(i);
    }
    let bytes = image(&index);
    let copy = from_image(&bytes).unwrap();
    assert_eq!(image(&copy), bytes);
    assert_eq!(copy.len(), index.len());
    assert_eq!(copy.deleted_count(), index.deleted_count());
    assert_eq!(copy.params(), index.params());
    for q in data.chunks_exact(24).step_by(97) {
        assert_eq!(
            copy.search(q, 10, 32).unwrap(),
            index.search(q, 10, 32).unwrap()
        );
    }
}

#[test]
fn unknown_version_is_reported_as_such() {
    let index = build(MetricKind::Ip, &gaussian(10, 4, 1), 4, 1);
    let mut bytes = image(&index);
    bytes[8] = 9;
    assert!(matches!(
        from_image(&bytes),
        Err(Error::UnsupportedVersion { found: 9, .. })
    ));
}

#[test]
fn bad_vectors_and_labels_get_clear_errors() {
    let params = Params::builder(MetricKind::Cosine, 4).build().unwrap();
    let index = Hnsw::new(params).unwrap();
    let e = index.insert(1, &[1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(e.to_string(), "expected 4 dimensions, not 3");
    let e = index.insert(1, &[1.0, f32::NAN, 3.0, 4.0]).unwrap_err();
    assert!(e.to_string().contains("component 1 is NaN"), "{e}");
    assert_eq!(index.insert(1, &[0.0; 4]).unwrap_err(), Error::ZeroVector);
    index.insert(1, &[1.0, 0.0, 0.0, 0.0]).unwrap();
    assert_eq!(
        index.insert(1, &[0.0, 1.0, 0.0, 0.0]).unwrap_err(),
        Error::DuplicateLabel(1)
    );
    assert!(index.search(&[1.0, 2.0], 1, 10).is_err());
    assert_eq!(index.len(), 1);
    assert!(index
        .search(&[1.0, 0.0, 0.0, 0.0], 0, 10)
        .unwrap()
        .is_empty());
}

#[test]
fn parameters_have_vss_defaults_and_checked_ranges() {
    let p = Params::builder(MetricKind::L2sq, 384).build().unwrap();
    assert_eq!(
        (p.m, p.m0, p.ef_construction, p.ef_search),
        (16, 32, 128, 64)
    );
    let e = Params::builder(MetricKind::L2sq, 8)
        .m(1)
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "M must be between 2 and 512, not 1");
    assert!(Params::builder(MetricKind::L2sq, 8)
        .m(8)
        .m0(4)
        .build()
        .is_err());
    assert!(Params::builder(MetricKind::L2sq, 0).build().is_err());
    assert!(Params::builder(MetricKind::L2sq, 8)
        .ef_search(0)
        .build()
        .is_err());
}

#[test]
fn levels_depend_only_on_seed_and_label() {
    // Same data, different thread counts and insertion order: identical layer structure.
    let data = gaussian(4_000, 16, 8);
    let a = build(MetricKind::L2sq, &data, 16, 1);
    let b = build(MetricKind::L2sq, &data, 16, 2);
    assert_eq!(a.layer_count(), b.layer_count());
    let params = *a.params();
    let c = Hnsw::new(params).unwrap();
    for i in (0..4_000u64).rev() {
        c.insert(i, &data[i as usize * 16..(i as usize + 1) * 16])
            .unwrap();
    }
    assert_eq!(a.layer_count(), c.layer_count());
    // A different seed gives a different structure.
    let other = Hnsw::new(
        Params::builder(MetricKind::L2sq, 16)
            .seed(1)
            .build()
            .unwrap(),
    )
    .unwrap();
    other.insert_numbered(&data, 0, 1).unwrap();
    assert!(image(&a) != image(&other));
}

#[test]
fn concurrent_inserts_and_searches_agree_with_exact_search() {
    let (data, queries) = split(8_000, 50, 32, 3);
    let params = Params::builder(MetricKind::L2sq, 32).build().unwrap();
    let index = Hnsw::new(params).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (index, data) = (&index, &data);
            scope.spawn(move || {
                for i in (t..8_000).step_by(4) {
                    index.insert(i as u64, &data[i * 32..(i + 1) * 32]).unwrap();
                    if i % 50 == 0 {
                        let got = index.search(&data[i * 32..(i + 1) * 32], 5, 32).unwrap();
                        assert!(!got.is_empty());
                    }
                }
            });
        }
    });
    assert_eq!(index.len(), 8_000);
    let r = mean_recall(&index, &data, &queries, 10, 64, &|_| false);
    assert!(r >= 0.95, "recall after concurrent build {r}");
}

#[test]
fn memory_grows_with_the_index() {
    let data = gaussian(10_000, 64, 4);
    let index = build(MetricKind::L2sq, &data, 64, 2);
    let bytes = index.memory_bytes();
    // At least the raw vectors and layer-0 lists, at most a few times that.
    let floor = 10_000 * (64 * 4 + 33 * 4);
    assert!(bytes >= floor && bytes < 4 * floor, "{bytes} vs {floor}");
}

#[test]
fn every_live_node_stays_reachable_after_compaction() {
    // Asking for every node with a large ef walks the whole connected graph.
    for seed in 0..4u64 {
        let data = gaussian(3_000, 32, 100 + seed);
        let mut index = build(MetricKind::L2sq, &data, 32, 2);
        for i in 0..3_000u64 {
            if hnsw::hash::mix64(i ^ seed).is_multiple_of(3) {
                index.delete(i);
            }
        }
        index.compact(1);
        let live = index.len();
        let all = index.search(&data[..32], live, live).unwrap();
        assert_eq!(
            all.len(),
            live,
            "seed {seed}: unreachable nodes after compaction"
        );
    }
}

#[test]
fn relink_makes_every_node_of_a_fresh_graph_reachable() {
    for (n, dim, seed) in [(5_000, 16, 1u64), (5_000, 64, 2), (3_000, 8, 3)] {
        let data = clustered(n, dim, 16, seed);
        let mut index = build(MetricKind::L2sq, &data, dim, 2);
        index.relink();
        let all = index.search(&data[..dim], n, n).unwrap();
        assert_eq!(all.len(), n, "n={n} dim={dim}");
    }
}

#[test]
fn exact_search_matches_the_oracle_and_skips_deleted() {
    let data = gaussian(2_000, 24, 6);
    let index = build(MetricKind::Ip, &data, 24, 2);
    for i in (0..2_000).step_by(3) {
        index.delete(i);
    }
    let skip = |i: usize| i.is_multiple_of(3);
    for q in data.chunks_exact(24).step_by(101) {
        let got: Vec<u64> = index
            .search_exact(q, 15)
            .unwrap()
            .iter()
            .map(|n| n.label)
            .collect();
        assert_eq!(got, exact_knn(MetricKind::Ip, &data, 24, q, 15, &skip));
    }
}

#[test]
fn retired_labels_stay_candidates_until_purged() {
    let (data, queries) = split(6_000, 50, 48, 21);
    let index = build(MetricKind::L2sq, &data, 48, 2);
    let retired = |i: usize| i % 4 == 1;
    for i in (0..6_000).filter(|&i| retired(i)) {
        assert!(index.retire(i as u64));
    }
    assert!(!index.retire(1), "a second retire must report it");
    assert_eq!(index.len(), 4_500);
    assert_eq!(index.retired_count(), 1_500);
    assert!(!index.contains(1) && index.is_retired(1));
    // Searches skip retired labels; candidates (for callers with older snapshots) include them,
    // ranked among the rest exactly as if nothing had been retired.
    let before = mean_recall(&index, &data, &queries, 10, 64, &retired);
    assert!(before >= 0.95, "recall with retired labels {before}");
    let none = |_: usize| false;
    for q in queries.chunks_exact(48) {
        let found: Vec<u64> = index
            .search_candidates(q, 10, 6_000)
            .unwrap()
            .iter()
            .take(10)
            .map(|n| n.label)
            .collect();
        assert_eq!(found, exact_knn(MetricKind::L2sq, &data, 48, q, 10, &none));
        let graph: Vec<u64> = index
            .search_candidates(q, 10, 128)
            .unwrap()
            .iter()
            .map(|n| n.label)
            .collect();
        assert!(graph.iter().any(|&l| retired(l as usize)));
    }
    // Purging deletes only retired labels.
    assert!(!index.purge(0), "a live label is not purged");
    for i in (0..6_000).filter(|&i| retired(i)) {
        assert!(index.purge(i as u64));
    }
    assert_eq!((index.len(), index.retired_count()), (4_500, 0));
    assert_eq!(index.deleted_count(), 1_500);
    for q in queries.chunks_exact(48) {
        let found = index.search_candidates(q, 10, 6_000).unwrap();
        assert!(found.iter().all(|n| !retired(n.label as usize)));
    }
}

#[test]
fn a_retired_label_inserted_again_is_replaced_and_stored_as_deleted() {
    let data = gaussian(1_000, 16, 9);
    let index = build(MetricKind::L2sq, &data, 16, 1);
    assert!(index.retire(7));
    assert!(index.retire(8));
    // Re-inserting a retired label (a database undoing the delete) gives one searchable node.
    index.insert(7, &data[7 * 16..8 * 16]).unwrap();
    assert!(index.contains(7) && !index.is_retired(7));
    assert_eq!(
        index.search(&data[7 * 16..8 * 16], 1, 32).unwrap()[0].label,
        7
    );
    assert_eq!((index.len(), index.retired_count()), (999, 1));
    // Stored images hold retired nodes as deleted: no older snapshot outlives a restart.
    let copy = from_image(&image(&index)).unwrap();
    assert_eq!((copy.len(), copy.retired_count()), (999, 0));
    assert!(!copy.contains(8) && !copy.is_retired(8));
    assert_eq!(copy.deleted_count(), index.deleted_count() + 1);
}

#[test]
fn relink_after_incremental_inserts_and_deletes_makes_every_node_reachable() {
    // One insert at a time with deletes in between, as a database's commits arrive: pruning
    // can cut nodes off; relink (run by the database glue after growth and at checkpoints)
    // must link them all again.
    for (dim, m, seed) in [(32usize, 8usize, 1u64), (16, 4, 3), (64, 16, 4)] {
        let params = Params::builder(MetricKind::L2sq, dim).m(m).build().unwrap();
        let mut index = Hnsw::new(params).unwrap();
        let data = gaussian(6_000, dim, seed);
        let mut live: Vec<u64> = Vec::new();
        for round in 0..30u64 {
            for label in round * 200..(round + 1) * 200 {
                let i = label as usize;
                index.insert(label, &data[i * dim..(i + 1) * dim]).unwrap();
                live.push(label);
            }
            for j in 0..60 {
                let pick = (hnsw::hash::mix64(round * 1000 + j + seed) as usize) % live.len();
                index.delete(live.swap_remove(pick));
            }
            if round % 10 == 9 {
                index.relink();
                let n = index.len();
                let reached = index.search(&data[..dim], n, n).unwrap().len();
                assert_eq!(
                    reached, n,
                    "dim {dim} m {m} round {round}: unreachable nodes"
                );
            }
        }
    }
}

#[test]
fn batch_candidates_equal_one_by_one_and_skip_unsearchable_queries() {
    let dim = 32;
    let data = clustered(3000, dim, 12, 41);
    let index = build(MetricKind::Cosine, &data, dim, 2);
    let mut queries: Vec<f32> = data[..40 * dim].to_vec();
    queries.extend(std::iter::repeat_n(0.0, dim)); // zero vector: no direction under cosine
    let mut nan = vec![1.0f32; dim];
    nan[3] = f32::NAN;
    queries.extend(nan);
    for threads in [1, 2] {
        let answers = index.candidates_batch(&queries, 10, 48, 0, threads);
        assert_eq!(answers.len(), 42);
        for (i, answer) in answers.iter().take(40).enumerate() {
            let one = index
                .candidates(&queries[i * dim..(i + 1) * dim], 10, 48)
                .unwrap();
            assert_eq!(answer.as_ref().unwrap(), &one, "query {i}");
            assert_eq!(one[0].label, i as u64); // a stored vector finds itself first
            assert!(one.len() >= 10 && one.len() <= hnsw::search::candidates_kept(10, 0));
        }
        assert!(answers[40].is_none() && answers[41].is_none());
    }
}

#[test]
fn input_vectors_are_copied_bit_for_bit_where_the_index_keeps_them() {
    // Float32 under l2sq and ip keeps vectors as inserted: a reader may take them from the index
    // (retired rows included); cosine (normalized) and codes may not.
    let dim = 48;
    let mut data = gaussian(300, dim, 17);
    data[5] = -0.0; // the sign of zero survives too
    for metric in [MetricKind::L2sq, MetricKind::Ip, MetricKind::Cosine] {
        let index = build(metric, &data, dim, 2);
        assert!(index.retire(7));
        let labels = [0u64, 7, 299, 150];
        let mut out = vec![f32::NAN; labels.len() * dim];
        let copied = index.copy_input_vectors(&labels, &mut out);
        assert_eq!(copied, metric != MetricKind::Cosine, "{metric:?}");
        assert_eq!(index.stores_input_vectors(), copied);
        if copied {
            for (row, &label) in out.chunks_exact(dim).zip(&labels) {
                let want = &data[label as usize * dim..(label as usize + 1) * dim];
                let same = row
                    .iter()
                    .zip(want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{metric:?}: label {label}");
            }
            // A label the index does not hold (deleted for good, or never inserted).
            assert!(index.delete(150));
            assert!(!index.copy_input_vectors(&labels, &mut out));
            assert!(!index.copy_input_vectors(&[300], &mut out[..dim]));
            // A retired label inserted again (DuckDB reusing a reverted row id): the new vector.
            let other: Vec<f32> = data[..dim].iter().map(|x| x + 1.0).collect();
            index.insert(7, &other).unwrap();
            let mut again = vec![0.0; dim];
            assert!(index.copy_input_vectors(&[7], &mut again));
            assert_eq!(again, other, "{metric:?}: re-inserted label");
            // A buffer sized for other dimensions.
            assert!(!index.copy_input_vectors(&labels[..1], &mut out[..dim - 1]));
        }
    }
    let int8 = Hnsw::new(
        Params::builder(MetricKind::L2sq, dim)
            .quantization(hnsw::quantize::Quantization::Int8)
            .build()
            .unwrap(),
    )
    .unwrap();
    int8.insert_numbered(&data, 0, 1).unwrap();
    assert!(!int8.stores_input_vectors());
    assert!(!int8.copy_input_vectors(&[0], &mut vec![0.0; dim]));
}
