// At LOAD: frees the tables a write before LOAD left stuck. Such a write tries to bind the table's
// stored HNSW index, fails (the type is unknown), and DuckDB before 2.0.1 leaves the index entry in
// state BINDING, so every later write to the table waits forever for a binder that is gone.
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"
#include "index/hnsw_index.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/catalog/catalog_entry/schema_catalog_entry.hpp"
#include "duckdb/catalog/duck_catalog.hpp"
#include "duckdb/main/attached_database.hpp"
#include "duckdb/main/database_manager.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/storage/data_table.hpp"

namespace duckdb {
namespace hnsw {

void ResetStuckIndexBinds(ExtensionLoader &loader) {
	// Runs before the index type is registered: until then no HNSW index can be in the middle of a
	// real bind, so every one found binding is stuck, and the next write binds it again.
	for (auto &attached : DatabaseManager::Get(loader.GetDatabaseInstance()).GetDatabases()) {
		if (attached->IsSystem() || !attached->GetCatalog().IsDuckCatalog()) {
			continue;
		}
		attached->GetCatalog().Cast<DuckCatalog>().ScanSchemas([&](SchemaCatalogEntry &schema) {
			schema.Scan(CatalogType::TABLE_ENTRY, [&](CatalogEntry &entry) {
				if (entry.type != CatalogType::TABLE_ENTRY) {
					return;
				}
				auto &table = entry.Cast<TableCatalogEntry>();
				if (table.IsDuckTable()) {
					ResetBindingIndexes(*table.Cast<DuckTableEntry>().GetStorage().GetDataTableInfo(),
					                    HNSWIndex::TYPE_NAME);
				}
			});
		});
	}
}

} // namespace hnsw
} // namespace duckdb
