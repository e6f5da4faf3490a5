//! Filtered search: the nearest rows among those a predicate matched. The caller evaluates the
//! predicate and passes the matching labels ([`LabelFilter`]); the core picks a strategy from
//! the real match count:
//!
//! - few matches: exact distances over the matching labels only;
//! - a middle share: a graph search that returns only matching nodes and walks through
//!   non-matching ones by looking at their neighbours' lists without computing their distances
//!   (two hops, as in ACORN-1);
//! - most rows match: the plain graph search with a result list that keeps only matching nodes,
//!   which widens the search until it holds `ef` of them.
//!
//! A graph strategy that has touched as many nodes as there are matches, or that found fewer
//! than `k`, gives way to the exact one, so a filtered search always returns min(k, matching
//! indexed labels) labels.

mod labels;
mod search;

pub use labels::LabelFilter;

use crate::error::Result;
use crate::graph::Hnsw;
use crate::search::{candidates_kept, with_thread_scratch, Neighbor};

/// Default largest match count answered by exact distances (measured with
/// `cargo bench --bench filtered`: below it the exact pass is cheaper than either graph search).
pub const EXACT_MAX_MATCHES_DEFAULT: usize = 4096;
/// Default smallest share of matching rows searched with the plain graph search (measured as
/// above: from here on it beats the two-hop search).
pub const POST_FILTER_MIN_SELECTIVITY_DEFAULT: f64 = 0.5;

/// How a filtered search picks its strategy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterSettings {
    /// Match counts up to this are answered exactly.
    pub exact_max_matches: usize,
    /// Shares of matching rows (of the searchable and retired ones) from which the plain search
    /// with a filtered result list is used; below it, the two-hop search.
    pub post_filter_min_selectivity: f64,
    /// Candidates per wanted result a coded index answers with (0: the index's option; see
    /// [`Hnsw::overfetch_for`]).
    pub overfetch: usize,
}

impl Default for FilterSettings {
    fn default() -> FilterSettings {
        FilterSettings {
            exact_max_matches: EXACT_MAX_MATCHES_DEFAULT,
            post_filter_min_selectivity: POST_FILTER_MIN_SELECTIVITY_DEFAULT,
            overfetch: 0,
        }
    }
}

/// The strategy a filtered search used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FilterStrategy {
    /// Exact distances over the matching labels.
    Exact = 0,
    /// Graph search through non-matching nodes by their neighbours' lists.
    TwoHop = 1,
    /// The plain graph search, keeping only matching nodes as results.
    PostFilter = 2,
}

impl FilterStrategy {
    /// The name EXPLAIN ANALYZE shows.
    pub fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or_default()
    }

    /// [`FilterStrategy::name`] as a C string (the C ABI hands it out).
    pub fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            FilterStrategy::Exact => c"exact",
            FilterStrategy::TwoHop => c"two_hop",
            FilterStrategy::PostFilter => c"post_filter",
        }
    }

    /// The strategy with code `code` (its `repr(u32)` value).
    pub fn from_code(code: u32) -> Option<FilterStrategy> {
        [
            FilterStrategy::Exact,
            FilterStrategy::TwoHop,
            FilterStrategy::PostFilter,
        ]
        .into_iter()
        .find(|s| *s as u32 == code)
    }
}

/// What a filtered search did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterReport {
    /// The strategy chosen from the match count.
    pub strategy: FilterStrategy,
    /// True when a graph strategy gave way to the exact one.
    pub fell_back: bool,
    /// Distances computed plus neighbour lists read for the two-hop walk.
    pub visited: usize,
    /// Labels in the filter.
    pub matches: usize,
}

impl Hnsw {
    /// The strategy [`Hnsw::candidates_filtered`] starts with for `matches` matching labels.
    pub fn filter_strategy(
        &self,
        matches: usize,
        ef: usize,
        settings: &FilterSettings,
    ) -> FilterStrategy {
        let indexed = (self.len() + self.retired_count()).max(1);
        if matches <= settings.exact_max_matches.max(ef) {
            FilterStrategy::Exact
        } else if matches as f64 >= settings.post_filter_min_selectivity * indexed as f64 {
            FilterStrategy::PostFilter
        } else {
            FilterStrategy::TwoHop
        }
    }

    /// Candidates among the labels of `filter` for a reader that re-ranks exactly: at least
    /// min(k, matching indexed labels) and at most `candidates_kept(k, 0)` labels (plus copies of
    /// identical vectors), closest first, none
    /// farther than `max_distance` (in the metric's units). Retired labels in the filter are
    /// candidates: the filter says what the reader's snapshot sees.
    pub fn candidates_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &LabelFilter,
        max_distance: f32,
        settings: &FilterSettings,
    ) -> Result<(Vec<Neighbor>, FilterReport)> {
        let k = k.saturating_mul(self.overfetch_for(settings.overfetch));
        let ef = ef.max(k);
        let mut q = crate::graph::Query::default();
        self.query_into(query, &mut q)?;
        let strategy = self.filter_strategy(filter.len(), ef, settings);
        let mut report = FilterReport {
            strategy,
            fell_back: false,
            visited: 0,
            matches: filter.len(),
        };
        if strategy != FilterStrategy::Exact && k > 0 {
            let found = with_thread_scratch(|s| {
                self.search_filtered(
                    s,
                    &q,
                    ef,
                    filter,
                    max_distance,
                    strategy == FilterStrategy::TwoHop,
                    filter.len(),
                )
            });
            report.visited = found.visited;
            if let Some(hits) = found.hits {
                // Fewer than k: the walk may have missed matching rows (under a distance bound,
                // rows in the ball reached only from outside it), so the exact pass decides.
                if hits.len() >= k {
                    let mut hits = hits;
                    hits.truncate(candidates_kept(k, 0));
                    return Ok((hits, report));
                }
            }
            report.fell_back = true;
        }
        let mut hits = self.exact_filtered(&q, ef, filter, max_distance);
        hits.truncate(candidates_kept(k, 0));
        report.visited += filter.len();
        Ok((hits, report))
    }
}
