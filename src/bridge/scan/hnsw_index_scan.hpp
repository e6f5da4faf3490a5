// HNSW_INDEX_SCAN: the table scan the top-k rewrite puts in place of a full scan. It returns
// only the rows of the index's candidates (fetched by rowid), so the TOP_N above re-ranks them
// with the exact SQL distance.
#pragma once

#include "duckdb.hpp"
#include "duckdb/function/table_function.hpp"

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
	//! In-out form: input column holding the query vector, and how many input columns there are.
	idx_t query_column = DConstants::INVALID_INDEX;
	idx_t passthrough_columns = 0;

	unique_ptr<FunctionData> Copy() const override;
	bool Equals(const FunctionData &other) const override;
};

//! The scan function (not in the catalog: only the optimizer places it).
TableFunction GetHNSWIndexScanFunction();
//! The same scan as an in-out function that reads the query vector from its input rows.
TableFunction GetHNSWIndexScanInOutFunction();

} // namespace hnsw
} // namespace duckdb
