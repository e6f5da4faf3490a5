// Keeping a table's last row group small, so a checkpoint after a small insert writes little.
//
// DuckDB appends committed rows to the table's last row group unless a new one is asked for. For
// a table with an index other than ART it never asks (vacuum could not renumber the rows after
// merging small row groups), so every checkpoint after an insert rewrites the whole last row
// group: up to 122,880 rows, 180 MB of 384-d vectors to store 100 new ones. Once the last row
// group has been written by a checkpoint and holds a tenth of the table's rows (at least 2,048,
// and at most LAST_ROW_GROUP_BYTES of vectors), the next append starts a new row group instead.
// So a checkpoint after a small insert rewrites at most a tenth of the table (its file then
// grows about as much as without the index), and row groups stay at least that large.
#include "hnsw_compat.hpp"
#include "index/hnsw_index.hpp"

#include "duckdb/main/attached_database.hpp"
#include "duckdb/storage/storage_manager.hpp"
#include "duckdb/storage/table/data_table_info.hpp"

namespace duckdb {
namespace hnsw {

//! Vector bytes of a checkpointed last row group above which appends always start a new one.
static constexpr idx_t LAST_ROW_GROUP_BYTES = idx_t(16) << 20;
//! Below that, the share of the table's rows above which they do.
static constexpr idx_t LAST_ROW_GROUP_SHARE = 10;

void HNSWIndex::AttachTable(DataTable &table) const {
	if (table.GetDataTableInfo()->IsTemporary() || db.GetStorageManager().InMemory()) {
		return; // never checkpointed
	}
	auto rows = TableRowGroups(table);
	lock_guard<mutex> guard(table_rows_lock);
	table_rows = rows;
}

void HNSWIndex::LimitLastRowGroup() {
	if (!rows_checkpointed.exchange(false)) {
		return; // rows were appended since the last checkpoint: the last row group is new anyway
	}
	shared_ptr<RowGroupCollection> rows;
	{
		lock_guard<mutex> guard(table_rows_lock);
		rows = table_rows.lock();
	}
	if (!rows) {
		return; // no statement has shown the table yet (an Appender-only session): DuckDB's default
	}
	auto row_bytes = MaxValue<idx_t>(Dimensions() * sizeof(float), 1);
	auto most = MinValue<idx_t>(MaxValue<idx_t>(LAST_ROW_GROUP_BYTES / row_bytes, STANDARD_VECTOR_SIZE),
	                            rows->GetRowGroupSize());
	auto limit =
	    MinValue<idx_t>(MaxValue<idx_t>(rows->GetTotalRows() / LAST_ROW_GROUP_SHARE, STANDARD_VECTOR_SIZE), most);
	if (LastRowGroupRows(*rows) >= limit) {
		// Stays set until DuckDB starts a row group; if this commit fails or merges whole row
		// groups instead, a later append starts it: a smaller row group, never misplaced rows.
		StartRowGroupOnNextAppend(*rows);
	}
}

} // namespace hnsw
} // namespace duckdb
