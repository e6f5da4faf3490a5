//! Benchmark and tuning measurements against brute force (the oracle) and their own definitions.

mod common;

use common::{clustered, exact_knn};
use hnsw::{Hnsw, MetricKind, Params};

const DIM: usize = 32;

fn build(data: &[f32]) -> Hnsw {
    let index = Hnsw::new(Params::builder(MetricKind::L2sq, DIM).build().unwrap()).unwrap();
    index.insert_numbered(data, 0, 2).unwrap();
    index
}

#[test]
fn exact_answers_match_brute_force() {
    let data = clustered(3_000, DIM, 20, 5);
    let index = build(&data);
    let queries = clustered(40, DIM, 20, 6);
    let truth = index.exact_top_k(&queries, 10, 2).unwrap();
    for (q, got) in queries.chunks_exact(DIM).zip(&truth) {
        assert_eq!(
            got,
            &exact_knn(MetricKind::L2sq, &data, DIM, q, 10, &|_| false)
        );
    }
    // Deleted rows are no answers (queries are answered 16 to a pass; 40 leaves a partial block).
    for label in (0..3_000).step_by(7) {
        assert!(index.delete(label));
    }
    let truth = index.exact_top_k(&queries, 10, 2).unwrap();
    for (q, got) in queries.chunks_exact(DIM).zip(&truth) {
        assert_eq!(
            got,
            &exact_knn(MetricKind::L2sq, &data, DIM, q, 10, &|l| l % 7 == 0)
        );
    }
}

#[test]
fn recall_and_work_grow_with_ef() {
    let data = clustered(5_000, DIM, 50, 7);
    let index = build(&data);
    let queries = index.sample_queries(100, 3).unwrap();
    assert_eq!(queries.len(), 100 * DIM);
    // Sampled queries are not stored rows.
    for q in queries.chunks_exact(DIM) {
        assert!(data.chunks_exact(DIM).all(|row| row != q));
    }
    let truth = index.exact_top_k(&queries, 10, 2).unwrap();
    let low = index.measure(&queries, &truth, 10, 10, None).unwrap();
    let high = index.measure(&queries, &truth, 10, 400, None).unwrap();
    assert!(
        low.recall <= high.recall && high.recall > 0.99,
        "{low:?} {high:?}"
    );
    assert!(low.distances_per_query < high.distances_per_query);
    for p in [&low, &high] {
        assert!(p.p50_ms <= p.p99_ms && p.qps > 0.0 && p.recall <= 1.0);
    }
    // Recall is the mean overlap with the exact answers, recomputed here.
    let mut hits = 0;
    for (q, want) in queries.chunks_exact(DIM).zip(&truth) {
        let found = index.search(q, 10, 10).unwrap();
        hits += found.iter().filter(|n| want.contains(&n.label)).count();
    }
    assert!((low.recall - hits as f64 / 1000.0).abs() < 1e-9);
}

#[test]
fn tuning_finds_the_smallest_ef_it_measured_reaching_the_target() {
    let data = clustered(5_000, DIM, 200, 9);
    let index = build(&data);
    let queries = index.sample_queries(200, 4).unwrap();
    let (ef, points) = index.tune_ef(&queries, 10, 0.97, 2, None).unwrap();
    let ef = ef.expect("0.97 is reachable");
    let chosen = points.iter().find(|p| p.ef == ef).unwrap();
    assert!(chosen.recall >= 0.97);
    let below: Vec<_> = points.iter().filter(|p| p.ef < ef).collect();
    if let Some(last) = below.last() {
        assert!(last.recall < 0.97, "{points:?}");
        assert!(ef - last.ef <= (ef / 16).max(1), "{points:?}");
    }
    assert!(points.windows(2).all(|w| w[0].ef < w[1].ef));
    // A target reached at ef = k stops there: a search returns k rows whatever its ef.
    let (easy, points) = index.tune_ef(&queries, 10, 0.05, 2, None).unwrap();
    assert_eq!(easy, Some(10));
    assert!(points.iter().all(|p| p.ef >= 10), "{points:?}");
    assert!(index.tune_ef(&queries, 10, 1.5, 2, None).is_err());
    assert!(index
        .measure(&queries[..DIM - 1], &[], 10, 10, None)
        .is_err());
}
