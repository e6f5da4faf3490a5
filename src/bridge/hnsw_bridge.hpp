// Registration entry points of the bridge: one per DuckDB hook file.
#pragma once

#include "duckdb.hpp"

namespace duckdb {
class ExtensionLoader;

namespace hnsw {
//! hnsw_version(), hnsw_simd()
void RegisterVersionFunctions(ExtensionLoader &loader);
//! array_l2sq_distance, array_l1_distance, array_normalize
void RegisterDistanceFunctions(ExtensionLoader &loader);
//! At LOAD, before the index type exists: unsticks tables a write before LOAD left binding forever
void ResetStuckIndexBinds(ExtensionLoader &loader);
//! Index type HNSW (CREATE INDEX ... USING HNSW) and the setting hnsw_ef_search
void RegisterIndexType(ExtensionLoader &loader);
//! The settings of filtered searches (hnsw_filter_exact_max_matches, ...)
void RegisterFilterSettings(ExtensionLoader &loader);
//! vss_join / vss_match table macros (vss's result shape, answered by the index)
void RegisterVssMacros(ExtensionLoader &loader);
//! hnsw_search(index, query, k)
void RegisterSearchFunction(ExtensionLoader &loader);
//! The top-k rewrite: ORDER BY <distance> LIMIT k becomes an HNSW_INDEX_SCAN
void RegisterTopNOptimizer(ExtensionLoader &loader);
//! Before writes: gives HNSW indexes their table's storage (they keep its last row group small)
void RegisterWriteOptimizer(ExtensionLoader &loader);
//! pragma_hnsw_index_info(), PRAGMA hnsw_compact_index
void RegisterIndexInfoFunctions(ExtensionLoader &loader);
//! read_npy / read_fvecs / read_bvecs / read_ivecs: embedding files as rows.
void RegisterReadVectorFunctions(ExtensionLoader &loader);
//! hnsw_benchmark / hnsw_tune: recall and search cost per ef against exact search
void RegisterBenchmarkFunctions(ExtensionLoader &loader);
//! hnsw_index_health(index): layers, degrees, unreachable rows, bytes, and what needs action
void RegisterIndexHealthFunction(ExtensionLoader &loader);
} // namespace hnsw
} // namespace duckdb
