//! Measuring an index on a query set, for `hnsw_benchmark` and `hnsw_tune`: exact answers once
//! (on all threads), then per ef the recall@k against them, distances computed per query, and the
//! latency of single searches run one at a time (the graph search alone, no SQL around it).

use crate::error::{Error, Result};
use crate::graph::Hnsw;
use crate::parallel::for_each_block;
use crate::quantize::Quantization;
use crate::rerank::Rerank;
use crate::search::{Neighbor, SearchScratch};
use std::sync::Mutex;
use std::time::Instant;

/// One ef's measurement over a query set.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchPoint {
    pub ef: usize,
    /// Mean over queries of |found ∩ exact| / |exact|.
    pub recall: f64,
    pub distances_per_query: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Single searches per second, one after another on one thread.
    pub qps: f64,
}

/// Queries answered together in one pass over the stored vectors by `exact_top_k`.
const EXACT_BLOCK: usize = 16;

/// The largest ef `tune_ef` tries before giving up on a target.
pub const TUNE_EF_MAX: usize = 4096;

impl Hnsw {
    /// The exact top `k` labels of each query (`queries` holds them back to back), on `threads`.
    pub fn exact_top_k(&self, queries: &[f32], k: usize, threads: usize) -> Result<Vec<Vec<u64>>> {
        let count = self.query_count(queries)?;
        let answers = Mutex::new(vec![Vec::new(); count]);
        for_each_block(
            count,
            EXACT_BLOCK,
            EXACT_BLOCK,
            threads,
            || (),
            |_, rows| {
                let block: Vec<&[f32]> = rows
                    .clone()
                    .map(|q| &queries[q * self.dim()..(q + 1) * self.dim()])
                    .collect();
                let found = self.search_exact_many(&block, k)?;
                let mut answers = answers.lock().unwrap_or_else(|e| e.into_inner());
                for (q, neighbors) in rows.zip(found) {
                    answers[q] = neighbors.iter().map(|n| n.label).collect();
                }
                Ok::<(), Error>(())
            },
        )?;
        Ok(answers.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs every query once at `ef` (after one untimed warm-up pass) and compares with `truth`.
    /// With `rerank`, a quantized index's candidates are re-ranked with the table's vectors
    /// inside the timed search, as a database reader does (see [`Hnsw::search_reranked`]).
    pub fn measure(
        &self,
        queries: &[f32],
        truth: &[Vec<u64>],
        k: usize,
        ef: usize,
        rerank: Option<Rerank>,
    ) -> Result<BenchPoint> {
        let count = self.query_count(queries)?;
        if truth.len() != count {
            return Err(Error::ParameterConflict(format!(
                "{count} queries but {} exact answers",
                truth.len()
            )));
        }
        let mut scratch = SearchScratch::new();
        let mut out: Vec<Neighbor> = Vec::with_capacity(k);
        let rerank = rerank.filter(|_| self.params().quantization != Quantization::F32);
        let search = |scratch: &mut SearchScratch, q: &[f32], out: &mut Vec<Neighbor>| match rerank
        {
            Some(r) => {
                *out = self.search_reranked(r.table, q, k, ef, r.overfetch)?;
                Ok(())
            }
            None => self.search_with(scratch, q, k, ef, out),
        };
        for q in queries.chunks_exact(self.dim()) {
            search(&mut scratch, q, &mut out)?;
        }
        // Re-ranked searches count in the thread's own scratch, plain ones in `scratch`.
        let counted = |scratch: &SearchScratch| {
            scratch.distance_count() + crate::search::thread_distance_count()
        };
        let before = counted(&scratch);
        let mut latencies = Vec::with_capacity(count);
        let mut hits = 0.0;
        let started = Instant::now();
        for (q, want) in queries.chunks_exact(self.dim()).zip(truth) {
            let t = Instant::now();
            search(&mut scratch, q, &mut out)?;
            latencies.push(t.elapsed().as_secs_f64() * 1e3);
            if !want.is_empty() {
                let found = out.iter().filter(|n| want.contains(&n.label)).count();
                hits += found as f64 / want.len() as f64;
            }
        }
        let total = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let at = |p: f64| latencies[((count - 1) as f64 * p).round() as usize];
        Ok(BenchPoint {
            ef,
            recall: hits / count as f64,
            distances_per_query: (counted(&scratch) - before) as f64 / count as f64,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            qps: count as f64 / total.max(1e-9),
        })
    }

    /// `count` queries near stored rows but not on them: stored vectors (spread over the index by
    /// `seed`), each moved a quarter of the way to its nearest other row, so a query's answer is
    /// not simply itself.
    pub fn sample_queries(&self, count: usize, seed: u64) -> Result<Vec<f32>> {
        let slots = self.slot_count() as u64;
        let mut out = Vec::with_capacity(count * self.dim());
        let mut state = seed;
        let mut tries = 0;
        while out.len() < count * self.dim() && tries < count * 20 && slots > 0 {
            tries += 1;
            state = crate::hash::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            let slot = (state % slots) as u32;
            let hidden = crate::graph::FREE
                | crate::graph::DELETED
                | crate::graph::RETIRED
                | crate::graph::COPY;
            if self.store.has_state(slot, hidden) {
                continue;
            }
            let mut own = Vec::new();
            self.node_floats(slot, &mut own);
            let near = self.search(&own, 2, 32)?;
            let other = near
                .iter()
                .map(|n| n.label)
                .find(|&l| l != self.store.label(slot));
            let target = match other.and_then(|l| self.vector(l)) {
                Some(v) => v,
                None => own.clone(),
            };
            out.extend(own.iter().zip(&target).map(|(a, b)| a + 0.25 * (b - a)));
        }
        if out.is_empty() {
            return Err(Error::ParameterConflict(
                "the index holds no rows to sample queries from".into(),
            ));
        }
        Ok(out)
    }

    /// The smallest ef (doubling from `k`, then halving the gap, never below `k`) whose recall@k on `queries`
    /// reaches `target`, with every point measured; None when even [`TUNE_EF_MAX`] falls short.
    pub fn tune_ef(
        &self,
        queries: &[f32],
        k: usize,
        target: f64,
        threads: usize,
        rerank: Option<Rerank>,
    ) -> Result<(Option<usize>, Vec<BenchPoint>)> {
        if !(0.0..=1.0).contains(&target) {
            return Err(Error::ParameterConflict(format!(
                "target_recall must be between 0 and 1, not {target}"
            )));
        }
        let truth = match rerank {
            Some(r) => self.exact_top_k_of(r.table, queries, k, threads)?,
            None => self.exact_top_k(queries, k, threads)?,
        };
        let mut points = Vec::new();
        // A search returns k rows whatever its ef, so no ef below k is tried.
        let (mut low, mut ef) = (k.saturating_sub(1), k.max(1));
        let high = loop {
            let point = self.measure(queries, &truth, k, ef, rerank)?;
            let reached = point.recall >= target;
            points.push(point);
            if reached {
                break Some(ef);
            }
            if ef >= TUNE_EF_MAX {
                break None;
            }
            low = ef;
            ef = (ef * 2).min(TUNE_EF_MAX);
        };
        let Some(mut high) = high else {
            return Ok((None, points));
        };
        while high - low > (high / 16).max(1) {
            let mid = (low + high) / 2;
            let point = self.measure(queries, &truth, k, mid, rerank)?;
            if point.recall >= target {
                high = mid;
            } else {
                low = mid;
            }
            points.push(point);
        }
        points.sort_by_key(|p| p.ef);
        Ok((Some(high), points))
    }

    /// Queries held back to back: their count, or an error when the length is not a multiple.
    fn query_count(&self, queries: &[f32]) -> Result<usize> {
        if !queries.len().is_multiple_of(self.dim()) || queries.is_empty() {
            return Err(Error::DimensionMismatch {
                expected: self.dim(),
                got: queries.len() % self.dim().max(1),
            });
        }
        Ok(queries.len() / self.dim())
    }
}
