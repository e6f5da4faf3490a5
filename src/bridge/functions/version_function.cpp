// hnsw_version() and hnsw_simd(): what is loaded, for bug reports.
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"
#include "rust/hnsw_rust_index.hpp"

#include "duckdb/main/extension/extension_loader.hpp"

namespace duckdb {
namespace hnsw {

static void VersionFunction(DataChunk &args, ExpressionState &state, Vector &result) {
	ReferenceConstant(result, Value(hnsw_rs_version()), args.size());
}

static void SimdFunction(DataChunk &args, ExpressionState &state, Vector &result) {
	CoreStatus status;
	Value simd(hnsw_rs_simd_name(status.Out()));
	status.Check("hnsw_simd");
	ReferenceConstant(result, simd, args.size());
}

void RegisterVersionFunctions(ExtensionLoader &loader) {
	loader.RegisterFunction(ScalarFunction("hnsw_version", {}, LogicalType::VARCHAR, VersionFunction));
	loader.RegisterFunction(ScalarFunction("hnsw_simd", {}, LogicalType::VARCHAR, SimdFunction));
}

} // namespace hnsw
} // namespace duckdb
