// The indexed column's float vectors read from the table itself, for an exact answer where a
// quantized index holds only codes (hnsw_search's re-rank, hnsw_benchmark's ground truth).
#pragma once

#include "duckdb.hpp"

namespace duckdb {
class ClientContext;
class DuckTableEntry;

namespace hnsw {
struct HNSWIndexRef;

//! The table an index covers, as this transaction's catalog sees it.
DuckTableEntry &IndexedTable(ClientContext &context, const HNSWIndexRef &ref);

//! Every committed row of the table this transaction sees with a non-NULL vector in storage column
//! `column` (of FLOAT[dim] `type`): row ids and vectors (row-major). No index handle may be held while it runs (the
//! scan locks the table).
void ReadTableVectors(ClientContext &context, DuckTableEntry &table, column_t column, const LogicalType &type,
                      idx_t dim, vector<uint64_t> &labels, vector<float> &vectors);

//! The committed rows among `row_ids` this transaction sees, with a non-NULL vector: row ids and
//! vectors.
void FetchTableVectors(ClientContext &context, DuckTableEntry &table, column_t column, const LogicalType &type,
                       idx_t dim, const vector<row_t> &row_ids, vector<uint64_t> &labels, vector<float> &vectors);

} // namespace hnsw
} // namespace duckdb
