// Reading the indexed column's vectors from the table (see hnsw_table_vectors.hpp).
#include "scan/hnsw_table_vectors.hpp"
#include "catalog/hnsw_index_catalog.hpp"
#include "hnsw_compat.hpp"
#include "hnsw_vectors.hpp"

#include "duckdb/catalog/catalog_entry/duck_index_entry.hpp"
#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/catalog/catalog_entry/schema_catalog_entry.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/scan_state.hpp"
#include "duckdb/transaction/duck_transaction.hpp"

namespace duckdb {
namespace hnsw {

DuckTableEntry &IndexedTable(ClientContext &context, const HNSWIndexRef &ref) {
	// The table whose storage holds the index: names can change, the storage cannot.
	auto &info = ref.catalog_entry.GetDataTableInfo();
	optional_ptr<DuckTableEntry> found;
	ref.catalog_entry.schema.Scan(context, CatalogType::TABLE_ENTRY, [&](CatalogEntry &entry) {
		if (found || entry.type != CatalogType::TABLE_ENTRY) {
			return;
		}
		auto &table = entry.Cast<TableCatalogEntry>();
		if (table.IsDuckTable() && table.Cast<DuckTableEntry>().GetStorage().GetDataTableInfo().get() == &info) {
			found = &table.Cast<DuckTableEntry>();
		}
	});
	if (!found) {
		throw CatalogException("the table of HNSW index \"%s\" was dropped", NameText(ref.catalog_entry.name));
	}
	return *found;
}

//! Appends the chunk's committed rows with a non-NULL vector (column 0) and their row ids
//! (column 1).
static void AppendRows(DataChunk &chunk, idx_t dim, vector<uint64_t> &labels, vector<float> &vectors) {
	ArrayRows<float> rows(chunk.data[0], chunk.size(), "reading the indexed column", "the stored");
	UnifiedVectorFormat ids;
	ToUnifiedFormat(chunk.data[1], chunk.size(), ids);
	auto id_data = UnifiedVectorFormat::GetData<row_t>(ids);
	for (idx_t i = 0; i < chunk.size(); i++) {
		auto row_id = id_data[ids.sel->get_index(i)];
		// This transaction's uncommitted rows are not in the index: its answers cannot hold them.
		if (rows.IsNull(i) || row_id >= MAX_ROW_ID) {
			continue;
		}
		auto row = rows.Row(i);
		labels.push_back(NumericCast<uint64_t>(row_id));
		vectors.insert(vectors.end(), row, row + dim);
	}
}

//! The vector column and the row id, as a fetch or scan reads them.
static vector<StorageIndex> VectorAndRowId(column_t column) {
	return {StorageIndex(column), StorageIndex(COLUMN_IDENTIFIER_ROW_ID)};
}

void ReadTableVectors(ClientContext &context, DuckTableEntry &table, column_t column, const LogicalType &type,
                      idx_t dim, vector<uint64_t> &labels, vector<float> &vectors) {
	labels.clear();
	vectors.clear();
	auto &storage = table.GetStorage();
	auto &transaction = DuckTransaction::Get(context, table.catalog);
	auto ids = VectorAndRowId(column);
	labels.reserve(storage.GetTotalRows());
	vectors.reserve(storage.GetTotalRows() * dim);
	TableScanState state;
	storage.InitializeScan(context, transaction, state, ids, nullptr);
	DataChunk chunk;
	chunk.Initialize(Allocator::DefaultAllocator(), {type, LogicalType::ROW_TYPE});
	while (true) {
		chunk.Reset();
		storage.Scan(transaction, chunk, state);
		if (chunk.size() == 0) {
			break;
		}
		AppendRows(chunk, dim, labels, vectors);
	}
}

void FetchTableVectors(ClientContext &context, DuckTableEntry &table, column_t column, const LogicalType &type,
                       idx_t dim, const vector<row_t> &row_ids, vector<uint64_t> &labels, vector<float> &vectors) {
	labels.clear();
	vectors.clear();
	auto &storage = table.GetStorage();
	auto &transaction = DuckTransaction::Get(context, table.catalog);
	auto ids = VectorAndRowId(column);
	DataChunk chunk;
	chunk.Initialize(Allocator::DefaultAllocator(), {type, LogicalType::ROW_TYPE});
	ColumnFetchState fetch_state;
	// Index labels are committed rows only, so no batch mixes in uncommitted ones (see
	// CandidateReader::Next for why that matters).
	vector<row_t> sorted;
	for (auto row_id : row_ids) {
		if (row_id < MAX_ROW_ID) {
			sorted.push_back(row_id);
		}
	}
	std::sort(sorted.begin(), sorted.end());
	for (idx_t offset = 0; offset < sorted.size(); offset += STANDARD_VECTOR_SIZE) {
		auto count = MinValue<idx_t>(STANDARD_VECTOR_SIZE, sorted.size() - offset);
		auto fetch_ids = RowIdVector(sorted.data() + offset, count);
		chunk.Reset();
		storage.Fetch(transaction, chunk, ids, fetch_ids, count, fetch_state);
		AppendRows(chunk, dim, labels, vectors);
	}
}

} // namespace hnsw
} // namespace duckdb
