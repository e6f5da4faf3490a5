// hnsw_version() and hnsw_simd(): what is loaded, for bug reports.
#include "hnsw_bridge.hpp"
#include "rust/hnsw_rust_index.hpp"

#include "duckdb/main/extension/extension_loader.hpp"

namespace duckdb {
namespace hnsw {

static void VersionFunction(DataChunk &args, ExpressionState &state, Vector &result) {
	result.Reference(Value(hnsw_rs_version()), count_t(args.size()));
}

static void SimdFunction(DataChunk &args, ExpressionState &state, Vector &result) {
	CoreStatus status;
	Value simd(hnsw_rs_simd_name(status.Out()));
	status.Check("hnsw_simd");
	result.Reference(simd, count_t(args.size()));
}

void RegisterVersionFunctions(ExtensionLoader &loader) {
	loader.RegisterFunction(ScalarFunction("hnsw_version", {}, LogicalType::VARCHAR, VersionFunction));
	loader.RegisterFunction(ScalarFunction("hnsw_simd", {}, LogicalType::VARCHAR, SimdFunction));
}

} // namespace hnsw
} // namespace duckdb
