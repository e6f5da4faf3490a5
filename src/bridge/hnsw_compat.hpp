// Differences between the DuckDB versions the bridge compiles against live here, nowhere else.
#pragma once

#include "duckdb.hpp"

namespace duckdb {
namespace hnsw {

//! Plain text of a function or catalog name (an Identifier since DuckDB 2.0).
inline const string &NameText(const Identifier &name) {
	return name.GetIdentifierName();
}

} // namespace hnsw
} // namespace duckdb
