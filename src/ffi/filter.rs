//! Filtered search: the candidates among the rows a predicate matched (see `crate::filter`).

use super::index::write_hits;
use super::{slice, with_status, HnswRsIndex, HnswStatus};
use crate::filter::{
    FilterSettings, FilterStrategy, LabelFilter, EXACT_MAX_MATCHES_DEFAULT,
    POST_FILTER_MIN_SELECTIVITY_DEFAULT,
};
use std::ffi::c_char;

/// Default of [`HnswFilterSettings::exact_max_matches`] (a literal for the C header).
pub const HNSW_FILTER_EXACT_MAX_MATCHES_DEFAULT: u64 = 4096;
/// Default of [`HnswFilterSettings::post_filter_min_selectivity`].
pub const HNSW_FILTER_POST_FILTER_MIN_SELECTIVITY_DEFAULT: f64 = 0.5;
const _: () = assert!(HNSW_FILTER_EXACT_MAX_MATCHES_DEFAULT == EXACT_MAX_MATCHES_DEFAULT as u64);
const _: () =
    assert!(HNSW_FILTER_POST_FILTER_MIN_SELECTIVITY_DEFAULT == POST_FILTER_MIN_SELECTIVITY_DEFAULT);

/// How a filtered search picks its strategy (see `FilterSettings`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HnswFilterSettings {
    /// Match counts up to this are answered by exact distances.
    pub exact_max_matches: u64,
    /// Shares of matching rows from which the plain search keeps only matching results; below
    /// it, the two-hop search.
    pub post_filter_min_selectivity: f64,
    /// Candidates per wanted result for a quantized index (0: the index's option).
    pub overfetch: u64,
}

/// What a filtered search did.
#[repr(C)]
#[derive(Default)]
pub struct HnswFilterReport {
    /// 0 exact, 1 two_hop, 2 post_filter (the strategy chosen from the match count).
    pub strategy: u32,
    /// True when a graph strategy gave way to the exact one.
    pub fell_back: bool,
    /// Distances computed plus neighbour lists read.
    pub visited: u64,
    /// Distinct labels in the filter.
    pub matches: u64,
}

/// The name EXPLAIN ANALYZE shows for a report's `strategy` code ("unknown" for any other code).
#[no_mangle]
pub extern "C" fn hnsw_rs_filter_strategy_name(strategy: u32) -> *const c_char {
    FilterStrategy::from_code(strategy)
        .map_or(c"unknown", FilterStrategy::c_name)
        .as_ptr()
}

/// Candidates for exact re-ranking among `filter_labels` (the rows the reader's predicate
/// matched and its snapshot sees; any order): at least min(k, matching indexed labels), closest
/// first, none farther than `max_distance` in the metric's units (infinity: no bound). Writes at
/// most `cap` labels and distances and returns how many; `report` (if not null) says how.
///
/// # Safety
/// `index` valid; `q` valid for `dim` reads; `filter_labels` for `filter_count` reads;
/// `labels`/`distances` for `cap` writes; `settings` valid; `report` and `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_candidates_filtered(
    index: *const HnswRsIndex,
    q: *const f32,
    dim: usize,
    k: usize,
    ef: usize,
    filter_labels: *const u64,
    filter_count: usize,
    max_distance: f32,
    settings: *const HnswFilterSettings,
    cap: usize,
    labels: *mut u64,
    distances: *mut f32,
    report: *mut HnswFilterReport,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let filter = LabelFilter::from_labels(slice(filter_labels, filter_count));
        let s = &*settings;
        let settings = FilterSettings {
            exact_max_matches: usize::try_from(s.exact_max_matches).unwrap_or(usize::MAX),
            post_filter_min_selectivity: s.post_filter_min_selectivity,
            overfetch: usize::try_from(s.overfetch).unwrap_or(usize::MAX),
        };
        let (hits, done) = (*index).0.candidates_filtered(
            slice(q, dim),
            k,
            ef,
            &filter,
            max_distance,
            &settings,
        )?;
        if let Some(r) = report.as_mut() {
            r.strategy = done.strategy as u32;
            r.fell_back = done.fell_back;
            r.visited = done.visited as u64;
            r.matches = done.matches as u64;
        }
        Ok(write_hits(&hits, cap, labels, distances))
    })
}
