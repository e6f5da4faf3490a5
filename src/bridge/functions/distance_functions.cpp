// Scalar distance functions DuckDB lacks, computed by the Rust kernels:
// array_l2sq_distance (squared L2), array_l1_distance (Manhattan), array_normalize (unit length).
// Argument rules, NULL handling and errors follow DuckDB's own array_distance.
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"
#include "rust/hnsw_rust_index.hpp"
#include "hnsw_vectors.hpp"

#include "duckdb/execution/expression_executor_state.hpp"
#include "duckdb/planner/expression/bound_function_expression.hpp"
#include "duckdb/main/extension/extension_loader.hpp"

namespace duckdb {
namespace hnsw {

//! Checks that an argument is FLOAT[n] or DOUBLE[n] and returns its element type.
static LogicalType CheckArrayArgument(const BoundScalarFunction &fn, const LogicalType &type, const char *side) {
	if (type.id() != LogicalTypeId::ARRAY) {
		throw BinderException("%s: %s argument must be a FLOAT[n] or DOUBLE[n] array, not %s", NameText(fn.GetName()),
		                      side, type.ToString());
	}
	auto &child = ArrayType::GetChildType(type);
	if (child.id() != LogicalTypeId::FLOAT && child.id() != LogicalTypeId::DOUBLE) {
		throw BinderException("%s: %s argument must be a FLOAT[n] or DOUBLE[n] array, not %s", NameText(fn.GetName()),
		                      side, type.ToString());
	}
	return child;
}

//! Binds two arrays of the same size to a common FLOAT or DOUBLE element type.
static void ResolveArrayPair(ResolveScalarFunctionTypesInput &input) {
	auto &fn = input.GetBoundFunction();
	auto &args = input.GetArguments();
	auto lhs = ReturnType(*args[0]);
	auto rhs = ReturnType(*args[1]);
	if (lhs.IsUnknown() && rhs.IsUnknown()) {
		fn.GetArguments()[0] = lhs;
		fn.GetArguments()[1] = rhs;
		fn.SetReturnType(LogicalType::UNKNOWN);
		return;
	}
	lhs = lhs.IsUnknown() ? rhs : lhs;
	rhs = rhs.IsUnknown() ? lhs : rhs;
	auto lhs_child = CheckArrayArgument(fn, lhs, "left");
	auto rhs_child = CheckArrayArgument(fn, rhs, "right");
	auto lhs_size = ArrayType::GetSize(lhs);
	auto rhs_size = ArrayType::GetSize(rhs);
	if (lhs_size != rhs_size) {
		throw BinderException("%s: arrays must have the same size, not %llu and %llu", NameText(fn.GetName()), lhs_size,
		                      rhs_size);
	}
	auto element = (lhs_child.id() == LogicalTypeId::DOUBLE || rhs_child.id() == LogicalTypeId::DOUBLE)
	                   ? LogicalType::DOUBLE
	                   : LogicalType::FLOAT;
	fn.GetArguments()[0] = LogicalType::ARRAY(element, lhs_size);
	fn.GetArguments()[1] = LogicalType::ARRAY(element, rhs_size);
	fn.SetReturnType(element);
}

//! Binds one FLOAT[n] or DOUBLE[n] array; the result has the same type.
static void ResolveArraySelf(ResolveScalarFunctionTypesInput &input) {
	auto &fn = input.GetBoundFunction();
	auto type = ReturnType(*input.GetArguments()[0]);
	if (type.IsUnknown()) {
		fn.GetArguments()[0] = type;
		fn.SetReturnType(LogicalType::UNKNOWN);
		return;
	}
	auto element = CheckArrayArgument(fn, type, "first");
	fn.GetArguments()[0] = LogicalType::ARRAY(element, ArrayType::GetSize(type));
	fn.SetReturnType(fn.GetArguments()[0]);
}

//! True when every input is a constant vector (the result then is one too).
static bool AllConstant(DataChunk &args) {
	for (auto &v : args.data) {
		if (v.GetVectorType() != VectorType::CONSTANT_VECTOR) {
			return false;
		}
	}
	return true;
}

template <class T, T (*KERNEL)(const T *, const T *, size_t, HnswStatus *)>
static void ArrayFold(DataChunk &args, ExpressionState &state, Vector &result) {
	auto &name = FunctionName(state.Cast<ExecuteFunctionState>().expr.Cast<BoundFunctionExpression>());
	ArrayRows<T> lhs(args.data[0], args.size(), name, "left");
	ArrayRows<T> rhs(args.data[1], args.size(), name, "right");
	auto out = MutableData<T>(result);
	CoreStatus status;
	idx_t count = args.size();
	for (idx_t i = 0; i < count; i++) {
		if (lhs.IsNull(i) || rhs.IsNull(i)) {
			FlatVector::SetNull(result, i, true);
			continue;
		}
		out[i] = KERNEL(lhs.Row(i), rhs.Row(i), lhs.size, status.Out());
		status.Check(name);
	}
	if (AllConstant(args)) {
		result.SetVectorType(VectorType::CONSTANT_VECTOR);
	}
}

template <class T, void (*KERNEL)(const T *, T *, size_t, HnswStatus *)>
static void ArrayMap(DataChunk &args, ExpressionState &state, Vector &result) {
	auto &name = FunctionName(state.Cast<ExecuteFunctionState>().expr.Cast<BoundFunctionExpression>());
	ArrayRows<T> input(args.data[0], args.size(), name, "first");
	auto &child = ArrayChildMutable(result);
	auto out = MutableData<T>(child);
	CoreStatus status;
	idx_t count = args.size();
	for (idx_t i = 0; i < count; i++) {
		if (input.IsNull(i)) {
			FlatVector::SetNull(result, i, true);
			continue;
		}
		KERNEL(input.Row(i), out + i * input.size, input.size, status.Out());
		status.Check(name);
	}
	if (AllConstant(args)) {
		result.SetVectorType(VectorType::CONSTANT_VECTOR);
	}
}

//! One overload per element type, bound by the resolve callback.
static void AddOverload(ScalarFunctionSet &set, const LogicalType &element, scalar_function_t function, idx_t arity,
                        resolve_scalar_types_t resolve) {
	auto array = LogicalType::ARRAY(element, optional_idx());
	auto returns = arity == 2 ? element : array;
	ScalarFunction fn({}, returns, std::move(function));
	SetResolveTypes(fn, resolve);
	fn.SetFallible();
	AddParameter(fn, "array1", array);
	if (arity == 2) {
		AddParameter(fn, "array2", array);
	}
	set.AddFunction(fn);
}

void RegisterDistanceFunctions(ExtensionLoader &loader) {
	ScalarFunctionSet l2sq("array_l2sq_distance");
	AddOverload(l2sq, LogicalType::FLOAT, ArrayFold<float, hnsw_rs_l2sq_f32>, 2, ResolveArrayPair);
	AddOverload(l2sq, LogicalType::DOUBLE, ArrayFold<double, hnsw_rs_l2sq_f64>, 2, ResolveArrayPair);
	loader.RegisterFunction(l2sq);

	ScalarFunctionSet l1("array_l1_distance");
	AddOverload(l1, LogicalType::FLOAT, ArrayFold<float, hnsw_rs_l1_f32>, 2, ResolveArrayPair);
	AddOverload(l1, LogicalType::DOUBLE, ArrayFold<double, hnsw_rs_l1_f64>, 2, ResolveArrayPair);
	loader.RegisterFunction(l1);

	ScalarFunctionSet normalize("array_normalize");
	AddOverload(normalize, LogicalType::FLOAT, ArrayMap<float, hnsw_rs_normalize_f32>, 1, ResolveArraySelf);
	AddOverload(normalize, LogicalType::DOUBLE, ArrayMap<double, hnsw_rs_normalize_f64>, 1, ResolveArraySelf);
	loader.RegisterFunction(normalize);
}

} // namespace hnsw
} // namespace duckdb
