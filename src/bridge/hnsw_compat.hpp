// Differences between the DuckDB versions the bridge compiles against live here, nowhere else.
#pragma once

#include "duckdb.hpp"
#include "duckdb/transaction/duck_transaction_manager.hpp"

namespace duckdb {
namespace hnsw {

//! Plain text of a function or catalog name (an Identifier since DuckDB 2.0).
inline const string &NameText(const Identifier &name) {
	return name.GetIdentifierName();
}

//! Id of the most recent commit of the database.
inline transaction_t LastCommit(AttachedDatabase &db) {
	return DuckTransactionManager::Get(db).GetLastCommit();
}

//! True when an active transaction may not see the commit `commit_id` (it started earlier), so
//! rows that commit deleted may still be visible to it.
inline bool SnapshotPredates(AttachedDatabase &db, transaction_t commit_id) {
	auto bound = DuckTransactionManager::Get(db).LowestVisibilityBound();
	return bound != VisibilityBound::AllCommitted() && commit_id >= bound;
}

} // namespace hnsw
} // namespace duckdb
