// Entry point: wires every hook of the extension into the database.
#include "hnsw_bridge.hpp"

#include "duckdb/main/extension/extension_loader.hpp"

namespace duckdb {
namespace hnsw {

static void Register(ExtensionLoader &loader) {
	loader.SetDescription("HNSW vector index");
	RegisterVersionFunctions(loader);
	RegisterDistanceFunctions(loader);
	ResetStuckIndexBinds(loader);
	RegisterIndexType(loader);
	RegisterFilterSettings(loader);
	RegisterSearchFunction(loader);
	RegisterVssMacros(loader);
	RegisterTopNOptimizer(loader);
	RegisterWriteOptimizer(loader);
	RegisterIndexInfoFunctions(loader);
	RegisterReadVectorFunctions(loader);
	RegisterBenchmarkFunctions(loader);
	RegisterIndexHealthFunction(loader);
}

} // namespace hnsw
} // namespace duckdb

extern "C" {
DUCKDB_CPP_EXTENSION_ENTRY(hnsw, loader) {
	duckdb::hnsw::Register(loader);
}
}
