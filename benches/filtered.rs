//! Filtered-search benchmark of the core: where each strategy is cheapest, to set the
//! defaults of `FilterSettings` (EXACT_MAX_MATCHES_DEFAULT, POST_FILTER_MIN_SELECTIVITY_DEFAULT).
//! Builds clustered data, then for filters of several shares (random, following the query's
//! cluster, avoiding it) times each strategy forced and the default choice. One JSON line each.
//!
//! cargo bench --bench filtered -- [--n 100000] [--dim 384] [--clusters 100] [--queries 200]

#[path = "../tests/common/mod.rs"]
mod common;

use common::Rng;
use hnsw::{FilterSettings, FilterStrategy, Hnsw, LabelFilter, MetricKind, Params};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .map_or(default, |i| args[i + 1].parse().expect("a number"))
    };
    let (n, dim, clusters, nq) = (
        arg("--n", 100_000),
        arg("--dim", 384),
        arg("--clusters", 100),
        arg("--queries", 200),
    );
    let k = 10;
    let ef = 64;
    // Gaussian clusters with known membership.
    let mut rng = Rng::new(42);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| rng.gaussian()).collect();
    let mut data = Vec::with_capacity(n * dim);
    let mut cluster = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.below(clusters);
        cluster.push(c);
        data.extend((0..dim).map(|d| centres[c * dim + d] + 0.35 * rng.gaussian()));
    }
    let mut index = Hnsw::new(Params::builder(MetricKind::Cosine, dim).build().unwrap()).unwrap();
    let start = Instant::now();
    index.insert_numbered(&data, 0, 2).unwrap();
    index.relink();
    eprintln!("built {n} x {dim} in {:.1}s", start.elapsed().as_secs_f64());
    let queries: Vec<(Vec<f32>, usize)> = (0..nq)
        .map(|_| {
            let row = rng.below(n);
            let q = data[row * dim..(row + 1) * dim]
                .iter()
                .map(|x| x + 0.2 * rng.gaussian())
                .collect();
            (q, cluster[row])
        })
        .collect();
    let exact = FilterSettings {
        exact_max_matches: usize::MAX,
        post_filter_min_selectivity: 1.0,
        ..FilterSettings::default()
    };
    let strategies = [
        ("exact", exact),
        (
            "two_hop",
            FilterSettings {
                exact_max_matches: 0,
                post_filter_min_selectivity: 2.0,
                ..FilterSettings::default()
            },
        ),
        (
            "post_filter",
            FilterSettings {
                exact_max_matches: 0,
                post_filter_min_selectivity: 0.0,
                ..FilterSettings::default()
            },
        ),
        ("default", FilterSettings::default()),
    ];
    for kind in ["random", "follows", "avoids"] {
        for share in [0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.002] {
            // Per query: the allowed labels. "follows": the query's cluster first, then others;
            // "avoids": never the query's cluster.
            let filters: Vec<LabelFilter> = queries
                .iter()
                .map(|(_, own)| {
                    let labels: Vec<u64> = (0..n)
                        .filter(|&i| {
                            let u = Rng::new(i as u64 * 31 + 7).uniform();
                            match kind {
                                "random" => u < share,
                                "follows" => {
                                    let wanted = share * clusters as f64;
                                    let rank = (cluster[i] + clusters - own) % clusters;
                                    (rank as f64) < wanted.floor()
                                        || (rank as f64 == wanted.floor() && u < wanted.fract())
                                }
                                _ => {
                                    cluster[i] != *own
                                        && u < share * clusters as f64 / (clusters - 1) as f64
                                }
                            }
                        })
                        .map(|i| i as u64)
                        .collect();
                    LabelFilter::from_labels(&labels)
                })
                .collect();
            let truth: Vec<Vec<u64>> = queries
                .iter()
                .zip(&filters)
                .map(|((q, _), f)| {
                    let (hits, _) = index
                        .candidates_filtered(q, k, k, f, f32::INFINITY, &exact)
                        .unwrap();
                    hits.iter().map(|h| h.label).collect()
                })
                .collect();
            let matches = filters.iter().map(|f| f.len()).sum::<usize>() / nq;
            for (name, settings) in &strategies {
                let mut recall = 0.0;
                let mut visited = 0usize;
                let mut fell_back = 0usize;
                let mut chosen = FilterStrategy::Exact;
                let start = Instant::now();
                for (((q, _), f), want) in queries.iter().zip(&filters).zip(&truth) {
                    let (hits, report) = index
                        .candidates_filtered(q, k, ef, f, f32::INFINITY, settings)
                        .unwrap();
                    visited += report.visited;
                    fell_back += usize::from(report.fell_back);
                    chosen = report.strategy;
                    let found = hits
                        .iter()
                        .take(k)
                        .filter(|h| want.contains(&h.label))
                        .count();
                    recall += found as f64 / want.len().max(1) as f64;
                }
                let us = start.elapsed().as_secs_f64() * 1e6 / nq as f64;
                println!(
                    "{{\"filter\":\"{kind}\",\"share\":{share},\"matches\":{matches},\"strategy\":\"{name}\",\"chose\":\"{}\",\"us\":{us:.1},\"recall\":{:.4},\"visited\":{},\"fell_back\":{fell_back}}}",
                    chosen.name(),
                    recall / nq as f64,
                    visited / nq
                );
            }
        }
    }
}
