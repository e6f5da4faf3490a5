// HNSW_INDEX_SCAN: the table scan the top-k rewrite puts in place of a full scan. It returns
// only the rows of the index's candidates (fetched by rowid), so the TOP_N above re-ranks them
// with the exact SQL distance.
#pragma once

#include "hnsw_compat.hpp"

#include "duckdb.hpp"
#include "duckdb/function/table_function.hpp"
#include "duckdb/planner/expression.hpp"

namespace duckdb {
class TableCatalogEntry;

namespace hnsw {

struct HNSWScanBindData : public TableFunctionData {
	HNSWScanBindData(TableCatalogEntry &table, string index_name, vector<float> query, idx_t k)
	    : table(table), index_name(std::move(index_name)), query(std::move(query)), k(k) {
	}
	TableCatalogEntry &table;
	string index_name;
	vector<float> query;
	//! LIMIT + OFFSET of the query: the search returns at least this many candidates.
	idx_t k;
	//! In-out form: input column holding the query vector.
	idx_t query_column = DConstants::INVALID_INDEX;
	//! Scan column id of the first passed-through input column (the table's column count).
	idx_t passthrough_base = DConstants::INVALID_INDEX;

	//! Filtered search (a WHERE clause over the table): the table columns the predicate reads,
	//! DuckDB's pushed-down filters on them (keyed by position in predicate_columns) and the
	//! other conjuncts (BOUND_REF to those positions). Only rows they match are returned.
	bool filtered = false;
	vector<ColumnIndex> predicate_columns;
	unique_ptr<TableFilterSet> predicate_filters;
	vector<unique_ptr<Expression>> predicate;
	//! The predicate as the user wrote it, for EXPLAIN.
	string predicate_text;
	//! Table column of the indexed vector.
	column_t vector_column = DConstants::INVALID_INDEX;
	//! A distance bound from the WHERE clause, in the index metric's units (infinity: none).
	float max_distance = std::numeric_limits<float>::infinity();

	//! Exact top-k form (a LATERAL join fused into the scan, hnsw_optimize_lateral_topk.cpp): the
	//! scan ranks each outer row's candidates itself and emits its k nearest. `distance` is the
	//! query's own SQL distance over BOUND_REF positions: the scan's table output columns, then the
	//! query vector; its value is the output column with id `distance_column` (descending: a
	//! similarity, largest first).
	unique_ptr<Expression> distance;
	idx_t distance_column = DConstants::INVALID_INDEX;
	bool descending = false;
	//! Rows whose distance is NULL rank last (arg_min_nulls_last); otherwise they are skipped.
	bool nulls_last = true;
	//! Table output columns read only by the distance (the vector): emitted as NULL, not copied.
	vector<idx_t> unread_outputs;

	unique_ptr<FunctionData> Copy() const override;
	bool Equals(const FunctionData &other) const override;
};

//! The scan function (not in the catalog: only the optimizer places it).
TableFunction GetHNSWIndexScanFunction();
//! The same scan as an in-out function that reads the query vector from its input rows.
TableFunction GetHNSWIndexScanInOutFunction();

} // namespace hnsw
} // namespace duckdb
