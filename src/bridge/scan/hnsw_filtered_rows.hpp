// Filtered search, the DuckDB side: the rows a WHERE clause matches, found by DuckDB over the
// predicate's columns only (never the vector column unless the predicate reads it), and the
// settings that steer the core's choice of strategy.
#pragma once

#include "hnsw_ffi.h"

#include "duckdb.hpp"

namespace duckdb {
class ClientContext;

namespace hnsw {
struct HNSWScanBindData;

//! Row ids of the rows the scan's predicate matches, as this transaction sees them.
struct MatchingRows {
	//! Committed rows (the ones the index may hold), ascending.
	vector<row_t> committed;
	//! This transaction's uncommitted rows (never in the index yet).
	vector<row_t> local;
};

//! Evaluates the predicate of a filtered scan: DuckDB's pushed-down filters in the table scan,
//! the other conjuncts over its output.
void CollectMatchingRows(ClientContext &context, const HNSWScanBindData &bind, MatchingRows &rows);

//! The session's SET hnsw_filter_exact_max_matches / hnsw_filter_post_filter_selectivity.
HnswFilterSettings FilterSettingsFor(ClientContext &context);

} // namespace hnsw
} // namespace duckdb
