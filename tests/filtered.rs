//! Filtered search against brute force over the matching rows: every strategy returns
//! min(k, matching rows) labels, all matching, with recall@10 ≥ 0.95, on filters that follow
//! the query's cluster, filters that avoid it, random filters of every share, copies and
//! retired rows.

mod common;

use common::{clustered, exact_knn, recall, Rng};
use hnsw::{FilterSettings, FilterStrategy, Hnsw, LabelFilter, MetricKind, Params};

const DIM: usize = 48;
const N: usize = 6000;
const CLUSTERS: usize = 30;
const K: usize = 10;

/// Clustered data plus each row's cluster (nearest centre, recomputed from the data).
fn data(seed: u64) -> (Vec<f32>, Vec<usize>) {
    let data = clustered(N, DIM, CLUSTERS, seed);
    // Cluster ids by a coarse key: rows of one Gaussian cluster share their nearest centre, so
    // group by the sign pattern of the first 12 components (stable within tight clusters).
    let cluster = data
        .chunks_exact(DIM)
        .map(|v| {
            v.iter()
                .take(12)
                .enumerate()
                .fold(0usize, |acc, (i, x)| acc | (usize::from(*x > 0.0) << i))
        })
        .collect();
    (data, cluster)
}

fn build(data: &[f32], metric: MetricKind) -> Hnsw {
    let index = Hnsw::new(Params::builder(metric, DIM).build().unwrap()).unwrap();
    index.insert_numbered(data, 0, 2).unwrap();
    index
}

/// Queries: stored rows plus noise.
fn queries(data: &[f32], count: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let row = rng.below(N);
            data[row * DIM..(row + 1) * DIM]
                .iter()
                .map(|x| x + 0.3 * rng.gaussian())
                .collect()
        })
        .collect()
}

/// Runs `queries` under `allowed` with the given settings; checks counts and membership and
/// returns the mean recall@K against brute force over the allowed rows.
fn check(
    index: &Hnsw,
    data: &[f32],
    metric: MetricKind,
    queries: &[Vec<f32>],
    allowed: &dyn Fn(usize) -> bool,
    settings: &FilterSettings,
    expect: Option<FilterStrategy>,
) -> f64 {
    let labels: Vec<u64> = (0..N).filter(|&i| allowed(i)).map(|i| i as u64).collect();
    let filter = LabelFilter::from_labels(&labels);
    assert_eq!(filter.len(), labels.len());
    let mut total = 0.0;
    for q in queries {
        let (hits, report) = index
            .candidates_filtered(q, K, 64, &filter, f32::INFINITY, settings)
            .unwrap();
        if let Some(strategy) = expect {
            assert_eq!(report.strategy, strategy);
        }
        assert_eq!(report.matches, labels.len());
        assert!(hits.len() >= K.min(labels.len()), "{} hits", hits.len());
        assert!(
            hits.iter().all(|h| allowed(h.label as usize)),
            "a hit outside the filter"
        );
        let mut seen = std::collections::HashSet::new();
        assert!(hits.iter().all(|h| seen.insert(h.label)), "a label twice");
        assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
        let truth = exact_knn(metric, data, DIM, q, K, &|i| !allowed(i));
        let found: Vec<u64> = hits.iter().take(K).map(|h| h.label).collect();
        total += recall(&found, &truth);
    }
    total / queries.len() as f64
}

fn forced(strategy: FilterStrategy) -> FilterSettings {
    match strategy {
        FilterStrategy::Exact => FilterSettings {
            exact_max_matches: usize::MAX,
            post_filter_min_selectivity: 1.0,
            ..FilterSettings::default()
        },
        FilterStrategy::TwoHop => FilterSettings {
            exact_max_matches: 0,
            post_filter_min_selectivity: 2.0,
            ..FilterSettings::default()
        },
        FilterStrategy::PostFilter => FilterSettings {
            exact_max_matches: 0,
            post_filter_min_selectivity: 0.0,
            ..FilterSettings::default()
        },
    }
}

#[test]
fn every_strategy_finds_the_filtered_neighbours_at_every_share() {
    let metric = MetricKind::Cosine;
    let (data, _) = data(1);
    let index = build(&data, metric);
    let qs = queries(&data, 40, 2);
    for share in [1.0, 0.5, 0.1, 0.01] {
        let keep = move |i: usize| (common::Rng::new(i as u64 ^ 77).uniform()) < share;
        for strategy in [
            FilterStrategy::Exact,
            FilterStrategy::TwoHop,
            FilterStrategy::PostFilter,
        ] {
            let r = check(
                &index,
                &data,
                metric,
                &qs,
                &keep,
                &forced(strategy),
                Some(strategy),
            );
            assert!(r >= 0.95, "{strategy:?} at share {share}: recall {r}");
        }
        let r = check(
            &index,
            &data,
            metric,
            &qs,
            &keep,
            &FilterSettings::default(),
            None,
        );
        assert!(r >= 0.95, "default settings at share {share}: recall {r}");
    }
}

#[test]
fn filters_that_avoid_the_query_cluster_still_return_k_rows() {
    for metric in [MetricKind::L2sq, MetricKind::Ip] {
        let (data, cluster) = data(3);
        let index = build(&data, metric);
        let qs = queries(&data, 30, 4);
        let mut totals = [0.0f64; 3];
        for q in &qs {
            // Allowed: a tenth of the rows of other clusters than the query's nearest row's.
            let nearest = exact_knn(metric, &data, DIM, q, 1, &|_| false)[0] as usize;
            let own = cluster[nearest];
            let allowed = |i: usize| cluster[i] != own && i % 10 == 3;
            let inside = |i: usize| cluster[i] == own;
            for (t, strategy) in [FilterStrategy::TwoHop, FilterStrategy::PostFilter]
                .into_iter()
                .enumerate()
            {
                let one = std::slice::from_ref(q);
                totals[t] += check(
                    &index,
                    &data,
                    metric,
                    one,
                    &allowed,
                    &forced(strategy),
                    Some(strategy),
                );
            }
            // Only the query's own cluster: a filter that follows the query.
            totals[2] += check(
                &index,
                &data,
                metric,
                std::slice::from_ref(q),
                &inside,
                &forced(FilterStrategy::TwoHop),
                None,
            );
        }
        for (what, total) in ["avoiding, two-hop", "avoiding, post-filter", "own cluster"]
            .iter()
            .zip(totals)
        {
            let r = total / qs.len() as f64;
            assert!(r >= 0.95, "{metric:?} {what}: recall {r}");
        }
    }
}

#[test]
fn one_row_no_row_and_labels_outside_the_index() {
    let metric = MetricKind::L2sq;
    let (data, _) = data(5);
    let index = build(&data, metric);
    let q = &queries(&data, 1, 6)[0];
    for settings in [
        forced(FilterStrategy::TwoHop),
        forced(FilterStrategy::PostFilter),
        FilterSettings::default(),
    ] {
        let none = LabelFilter::from_labels(&[]);
        let (hits, _) = index
            .candidates_filtered(q, K, 64, &none, f32::INFINITY, &settings)
            .unwrap();
        assert!(hits.is_empty());
        // One indexed row plus labels the index never held (rows without a vector).
        let one = LabelFilter::from_labels(&[4321, 10_000_000, 123_456_789_012]);
        let (hits, _) = index
            .candidates_filtered(q, K, 64, &one, f32::INFINITY, &settings)
            .unwrap();
        assert_eq!(hits.iter().map(|h| h.label).collect::<Vec<_>>(), vec![4321]);
    }
}

#[test]
fn a_distance_bound_keeps_only_rows_within_it() {
    let metric = MetricKind::L2sq;
    let (data, _) = data(7);
    let index = build(&data, metric);
    let all: Vec<u64> = (0..N as u64).collect();
    let filter = LabelFilter::from_labels(&all);
    for q in queries(&data, 10, 8) {
        let truth = exact_knn(metric, &data, DIM, &q, 200, &|_| false);
        let (exact, _) = index
            .candidates_filtered(
                &q,
                200,
                200,
                &filter,
                f32::INFINITY,
                &forced(FilterStrategy::Exact),
            )
            .unwrap();
        assert_eq!(exact.iter().map(|h| h.label).collect::<Vec<_>>(), truth);
        // A bound between the 5th and 6th distance: exactly five rows qualify.
        let bound = (exact[4].distance + exact[5].distance) / 2.0;
        for strategy in [
            FilterStrategy::Exact,
            FilterStrategy::TwoHop,
            FilterStrategy::PostFilter,
        ] {
            let (hits, _) = index
                .candidates_filtered(&q, K, 64, &filter, bound, &forced(strategy))
                .unwrap();
            assert!(hits.iter().all(|h| h.distance <= bound));
            assert_eq!(hits.len(), 5, "{strategy:?}");
        }
    }
}

#[test]
fn copies_and_retired_rows_follow_the_filter() {
    let metric = MetricKind::Cosine;
    let (mut data, _) = data(9);
    // Rows 100..400 repeat row 99's vector: one graph node carries them.
    let row: Vec<f32> = data[99 * DIM..100 * DIM].to_vec();
    for i in 100..400 {
        data[i * DIM..(i + 1) * DIM].copy_from_slice(&row);
    }
    let index = build(&data, metric);
    // Retire rows 1000..1100 (deleted for new readers; an old snapshot still sees them).
    let retired: Vec<u64> = (1000..1100).collect();
    index.retire_batch(&retired, 1);
    for strategy in [
        FilterStrategy::Exact,
        FilterStrategy::TwoHop,
        FilterStrategy::PostFilter,
    ] {
        // Only copies 250 and 300 match, plus a sparse set elsewhere: the carrier (row 99) does not.
        let mut labels: Vec<u64> = (0..N as u64)
            .filter(|i| i % 7 == 0 && !(99..400).contains(i))
            .collect();
        labels.extend([250, 300]);
        let filter = LabelFilter::from_labels(&labels);
        let (hits, _) = index
            .candidates_filtered(&row, K, 64, &filter, f32::INFINITY, &forced(strategy))
            .unwrap();
        let got: Vec<u64> = hits.iter().take(2).map(|h| h.label).collect();
        assert!(
            got.contains(&250) && got.contains(&300),
            "{strategy:?}: {got:?}"
        );
        assert!(hits.iter().all(|h| labels.contains(&h.label)));
        // A retired row the filter lists (visible to this reader) is found by its own vector.
        let q = data[1050 * DIM..1051 * DIM].to_vec();
        let (hits, _) = index
            .candidates_filtered(&q, K, 64, &filter, f32::INFINITY, &forced(strategy))
            .unwrap();
        assert_eq!(hits[0].label, 1050, "{strategy:?}");
    }
}
