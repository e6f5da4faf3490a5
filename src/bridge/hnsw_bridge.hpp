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
} // namespace hnsw
} // namespace duckdb
