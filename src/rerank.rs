//! Exact ranking with the table's own float vectors. A quantized index ranks candidates by code
//! estimates; a database reader re-ranks them with the rows it fetches. `hnsw_search` and the
//! benchmarks do the same here, so what they report is what a query returns.

use crate::distance::MetricKind;
use crate::error::{Error, Result};
use crate::graph::Hnsw;
use crate::parallel::for_each_block;
use crate::search::Neighbor;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

/// Rows' float vectors by label (a copy of the indexed column), for exact answers and re-ranking.
pub struct TableVectors {
    dim: usize,
    labels: Vec<u64>,
    vectors: Vec<f32>,
    rows: HashMap<u64, usize>,
}

impl TableVectors {
    /// Takes `labels.len()` rows of `dim` floats each, row-major; a label given twice is an error.
    pub fn new(dim: usize, labels: Vec<u64>, vectors: Vec<f32>) -> Result<TableVectors> {
        if dim == 0 || vectors.len() != labels.len() * dim {
            return Err(Error::DimensionMismatch {
                expected: labels.len() * dim,
                got: vectors.len(),
            });
        }
        let mut rows = HashMap::with_capacity(labels.len());
        for (row, &label) in labels.iter().enumerate() {
            if rows.insert(label, row).is_some() {
                return Err(Error::ParameterConflict(format!(
                    "label {label} appears twice among the table's vectors"
                )));
            }
        }
        Ok(TableVectors {
            dim,
            labels,
            vectors,
            rows,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The vector of `label`, if the table has that row.
    pub fn get(&self, label: u64) -> Option<&[f32]> {
        self.rows
            .get(&label)
            .map(|&row| &self.vectors[row * self.dim..(row + 1) * self.dim])
    }
}

/// How a benchmark re-ranks a quantized index's answers: with the table's vectors, from k times
/// `overfetch` candidates (0: the index's factor), as a query under `SET hnsw_overfetch` does.
#[derive(Clone, Copy)]
pub struct Rerank<'a> {
    pub table: &'a TableVectors,
    pub overfetch: usize,
}

/// Keeps the `k` smallest (distance, label) pairs, ascending; NaN distances sort last.
fn keep_closest(mut scored: Vec<Neighbor>, k: usize) -> Vec<Neighbor> {
    // total_cmp puts positive NaN after every number.
    let order = |a: &Neighbor, b: &Neighbor| {
        nan_last(a.distance)
            .total_cmp(&nan_last(b.distance))
            .then(a.label.cmp(&b.label))
    };
    if k == 0 {
        return Vec::new();
    }
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
    }
    scored.sort_by(order);
    scored
}

/// A distance with any NaN made positive, so that `total_cmp` orders it after every number.
fn nan_last(d: f32) -> f32 {
    if d.is_nan() {
        f32::NAN.abs()
    } else {
        d
    }
}

impl Hnsw {
    /// `vectors` (row-major) in stored form: normalized for cosine, as they are for the other
    /// metrics. A row cosine cannot measure (zero, or not finite) becomes NaNs.
    fn stored_form<'a>(&self, vectors: &'a [f32]) -> Cow<'a, [f32]> {
        if self.params().metric != MetricKind::Cosine {
            return Cow::Borrowed(vectors);
        }
        let dim = self.dim();
        let mut out = Vec::with_capacity(vectors.len());
        let mut row = Vec::with_capacity(dim);
        for v in vectors.chunks_exact(dim) {
            match self.prepare_into(v, &mut row) {
                Ok(()) => out.extend_from_slice(&row),
                Err(_) => out.extend(std::iter::repeat_n(f32::NAN, dim)),
            }
        }
        Cow::Owned(out)
    }

    /// Exact distances (in the index's units) from `query` to each of `vectors` (row-major).
    /// A vector the metric cannot measure (NaN, or zero under cosine) gets a NaN distance.
    pub fn exact_distances(&self, query: &[f32], vectors: &[f32]) -> Result<Vec<f32>> {
        let dim = self.dim();
        if !vectors.len().is_multiple_of(dim) {
            return Err(Error::DimensionMismatch {
                expected: dim,
                got: vectors.len() % dim,
            });
        }
        let mut q = Vec::new();
        self.prepare_into(query, &mut q)?;
        Ok(self.distances_to(&q, &self.stored_form(vectors)))
    }

    /// Distances from a prepared query to stored-form rows.
    fn distances_to(&self, q: &[f32], rows: &[f32]) -> Vec<f32> {
        rows.chunks_exact(self.dim())
            .map(|row| self.dist.eval(q, row))
            .collect()
    }

    /// The `k` of `labels` (with their `vectors`, row-major) closest to `query` by exact
    /// distance, closest first, ties broken by label.
    pub fn rerank(
        &self,
        query: &[f32],
        labels: &[u64],
        vectors: &[f32],
        k: usize,
    ) -> Result<Vec<Neighbor>> {
        if vectors.len() != labels.len() * self.dim() {
            return Err(Error::DimensionMismatch {
                expected: labels.len() * self.dim(),
                got: vectors.len(),
            });
        }
        let distances = self.exact_distances(query, vectors)?;
        let scored = labels
            .iter()
            .zip(distances)
            .map(|(&label, distance)| Neighbor { label, distance })
            .collect();
        Ok(keep_closest(scored, k))
    }

    /// The index's candidates for `query` (k times `overfetch`, 0: the index's factor)
    /// re-ranked with the table's vectors: the top `k` a database reader returns (candidates the
    /// table lacks are skipped).
    pub fn search_reranked(
        &self,
        table: &TableVectors,
        query: &[f32],
        k: usize,
        ef: usize,
        overfetch: usize,
    ) -> Result<Vec<Neighbor>> {
        let hits = self.candidates_overfetched(query, k, ef, overfetch)?;
        let mut labels = Vec::with_capacity(hits.len());
        let mut vectors = Vec::with_capacity(hits.len() * self.dim());
        for hit in &hits {
            if let Some(v) = table.get(hit.label) {
                labels.push(hit.label);
                vectors.extend_from_slice(v);
            }
        }
        self.rerank(query, &labels, &vectors, k)
    }

    /// The exact top `k` labels of each query over the table's vectors, on `threads` threads.
    pub fn exact_top_k_of(
        &self,
        table: &TableVectors,
        queries: &[f32],
        k: usize,
        threads: usize,
    ) -> Result<Vec<Vec<u64>>> {
        if table.dim != self.dim() {
            return Err(Error::DimensionMismatch {
                expected: self.dim(),
                got: table.dim,
            });
        }
        let dim = self.dim();
        let count = queries.len() / dim;
        // Each table row in stored form once, not once per query.
        let stored = self.stored_form(&table.vectors);
        let answers = Mutex::new(vec![Vec::new(); count]);
        for_each_block(
            count,
            1,
            1,
            threads,
            || (),
            |_, rows| {
                for q in rows {
                    let mut query = Vec::new();
                    self.prepare_into(&queries[q * dim..(q + 1) * dim], &mut query)?;
                    let scored = table
                        .labels
                        .iter()
                        .zip(self.distances_to(&query, &stored))
                        .map(|(&label, distance)| Neighbor { label, distance })
                        .collect();
                    let best = keep_closest(scored, k);
                    answers.lock().unwrap_or_else(|e| e.into_inner())[q] =
                        best.iter().map(|n| n.label).collect();
                }
                Ok::<(), Error>(())
            },
        )?;
        Ok(answers.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}
