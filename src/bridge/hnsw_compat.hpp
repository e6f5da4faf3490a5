// Differences between the DuckDB versions the bridge compiles against live here, nowhere else.
// HNSW_DUCKDB_VERSION is X*10000+Y*100+Z (set by the Makefile); the other files call the helpers below.
#pragma once

#ifndef HNSW_DUCKDB_VERSION
#error "HNSW_DUCKDB_VERSION must be defined (X*10000+Y*100+Z of the DuckDB headers, see the Makefile)"
#endif

#include "duckdb.hpp"
#include "duckdb/execution/index/bound_index.hpp"
#include "duckdb/function/scalar_function.hpp"
#include "duckdb/function/table_function.hpp"
#include "duckdb/parser/expression/constant_expression.hpp"
#include "duckdb/parser/parsed_data/create_index_info.hpp"
#include "duckdb/parser/parsed_data/create_macro_info.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/statement/select_statement.hpp"
#include "duckdb/planner/expression/bound_aggregate_expression.hpp"
#include "duckdb/planner/expression/bound_cast_expression.hpp"
#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/expression/bound_comparison_expression.hpp"
#include "duckdb/planner/expression/bound_constant_expression.hpp"
#include "duckdb/planner/expression/bound_function_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/joinside.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/index_storage_info.hpp"
#include "duckdb/storage/table/data_table_info.hpp"
#include "duckdb/storage/table/row_group_collection.hpp"
#include "duckdb/storage/table/row_group_segment_tree.hpp"
#include "duckdb/storage/table/table_index_list.hpp"
#include "duckdb/transaction/duck_transaction_manager.hpp"

#if HNSW_DUCKDB_VERSION >= 20000
#include "duckdb/common/vector/array_vector.hpp"
#include "duckdb/execution/index/index_lock.hpp"
#include "duckdb/main/profiler/profiling_node.hpp"
#include "duckdb/planner/filter/expression_filter.hpp"
#include "duckdb/planner/table_filter_set.hpp"
#include "duckdb/storage/table/index_entry.hpp"
#else
#include "duckdb/planner/table_filter.hpp"
#include "duckdb/storage/table/append_state.hpp"
#endif

namespace duckdb {
namespace hnsw {

//===--------------------------------------------------------------------===//
// Names
//===--------------------------------------------------------------------===//

#if HNSW_DUCKDB_VERSION >= 20000
//! Plain text of a function or catalog name (an Identifier since DuckDB 2.0).
inline const string &NameText(const Identifier &name) {
	return name.GetIdentifierName();
}
#else
//! Names are plain strings before DuckDB 2.0 (hides 1.5.6's unused Identifier: include this header first).
using Identifier = string;

//! Plain text of a function or catalog name (a string before DuckDB 2.0).
inline const string &NameText(const string &name) {
	return name;
}
#endif

//===--------------------------------------------------------------------===//
// Plan bindings
//===--------------------------------------------------------------------===//

#if HNSW_DUCKDB_VERSION >= 20000
// TableIndex and ProjectionIndex are DuckDB's own types.
#else
//! Table indexes of plan operators are plain numbers before DuckDB 2.0.
using TableIndex = idx_t;
//! Column positions in an operator's output are plain numbers before DuckDB 2.0.
using ProjectionIndex = idx_t;
#endif

//===--------------------------------------------------------------------===//
// Expressions (fields before DuckDB 2.0, accessors since)
//===--------------------------------------------------------------------===//

#if HNSW_DUCKDB_VERSION >= 20000
//! A bound call of `function` (bound here, not through the binder) on one argument.
inline unique_ptr<Expression> CallFunction(const ScalarFunction &function, unique_ptr<Expression> argument) {
	vector<unique_ptr<Expression>> arguments;
	arguments.push_back(std::move(argument));
	return make_uniq<BoundFunctionExpression>(BoundScalarFunction(function), std::move(arguments), nullptr);
}
#else
//! A bound call of `function` (bound here, not through the binder) on one argument.
inline unique_ptr<Expression> CallFunction(const ScalarFunction &function, unique_ptr<Expression> argument) {
	vector<unique_ptr<Expression>> arguments;
	arguments.push_back(std::move(argument));
	return make_uniq<BoundFunctionExpression>(function.return_type, function, std::move(arguments), nullptr);
}
#endif

#if HNSW_DUCKDB_VERSION >= 20000
//! The type an expression returns.
inline const LogicalType &ReturnType(const Expression &expr) {
	return expr.GetReturnType();
}

//! The table and column a column reference reads.
inline const ColumnBinding &BindingOf(const BoundColumnRefExpression &ref) {
	return ref.Binding();
}

//! The value of a constant.
inline const Value &ConstantValue(const BoundConstantExpression &constant) {
	return constant.GetValue();
}

//! The name of a bound scalar function call.
inline const string &FunctionName(const BoundFunctionExpression &function) {
	return NameText(function.Function().GetName());
}

//! The name of a bound aggregate call.
inline const string &FunctionName(const BoundAggregateExpression &aggregate) {
	return NameText(aggregate.Function().GetName());
}

//! The arguments of a bound scalar function call.
inline const vector<unique_ptr<Expression>> &Children(const BoundFunctionExpression &function) {
	return function.GetChildren();
}

//! The arguments of a bound aggregate call.
inline const vector<unique_ptr<Expression>> &Children(const BoundAggregateExpression &aggregate) {
	return aggregate.GetChildren();
}

//! True when an aggregate has a FILTER (WHERE ...) or an ORDER BY of its own.
inline bool HasFilterOrOrderBy(const BoundAggregateExpression &aggregate) {
	return aggregate.GetFilter() || aggregate.GetOrderBys();
}

//! The comparison type and sides of a comparison; false if `expr` is none (comparisons are
//! function expressions since DuckDB 2.0).
inline bool ComparisonParts(const Expression &expr, ExpressionType &type, const Expression *&left,
                            const Expression *&right) {
	if (!BoundComparisonExpression::IsComparison(expr)) {
		return false;
	}
	auto &comparison = expr.Cast<BoundFunctionExpression>();
	type = expr.GetExpressionType();
	left = &BoundComparisonExpression::Left(comparison);
	right = &BoundComparisonExpression::Right(comparison);
	return true;
}

//! The comparison type and sides of a join condition; false if it is not a left/right comparison.
inline bool JoinConditionParts(const JoinCondition &condition, ExpressionType &type, const Expression *&left,
                               const Expression *&right) {
	if (!condition.IsComparison()) {
		return false;
	}
	type = condition.GetComparisonType();
	left = &condition.GetLHS();
	right = &condition.GetRHS();
	return true;
}

//! The child of a cast, or null if `expr` is no cast (casts are function expressions since DuckDB 2.0).
inline const Expression *CastChild(const Expression &expr) {
	if (!BoundCastExpression::IsCast(expr)) {
		return nullptr;
	}
	return &BoundCastExpression::Child(expr.Cast<BoundFunctionExpression>());
}
#else
//! The type an expression returns.
inline const LogicalType &ReturnType(const Expression &expr) {
	return expr.return_type;
}

//! The table and column a column reference reads.
inline const ColumnBinding &BindingOf(const BoundColumnRefExpression &ref) {
	return ref.binding;
}

//! The value of a constant.
inline const Value &ConstantValue(const BoundConstantExpression &constant) {
	return constant.value;
}

//! The name of a bound scalar function call.
inline const string &FunctionName(const BoundFunctionExpression &function) {
	return function.function.name;
}

//! The name of a bound aggregate call.
inline const string &FunctionName(const BoundAggregateExpression &aggregate) {
	return aggregate.function.name;
}

//! The arguments of a bound scalar function call.
inline const vector<unique_ptr<Expression>> &Children(const BoundFunctionExpression &function) {
	return function.children;
}

//! The arguments of a bound aggregate call.
inline const vector<unique_ptr<Expression>> &Children(const BoundAggregateExpression &aggregate) {
	return aggregate.children;
}

//! True when an aggregate has a FILTER (WHERE ...) or an ORDER BY of its own.
inline bool HasFilterOrOrderBy(const BoundAggregateExpression &aggregate) {
	return aggregate.filter || aggregate.order_bys;
}

//! The comparison type and sides of a comparison; false if `expr` is none (a class of its own
//! before DuckDB 2.0).
inline bool ComparisonParts(const Expression &expr, ExpressionType &type, const Expression *&left,
                            const Expression *&right) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_COMPARISON) {
		return false;
	}
	auto &comparison = expr.Cast<BoundComparisonExpression>();
	type = expr.GetExpressionType();
	left = comparison.left.get();
	right = comparison.right.get();
	return true;
}

//! The comparison type and sides of a join condition (always a comparison before DuckDB 2.0).
inline bool JoinConditionParts(const JoinCondition &condition, ExpressionType &type, const Expression *&left,
                               const Expression *&right) {
	type = condition.comparison;
	left = condition.left.get();
	right = condition.right.get();
	return true;
}

//! The child of a cast, or null if `expr` is no cast (a class of its own before DuckDB 2.0).
inline const Expression *CastChild(const Expression &expr) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_CAST) {
		return nullptr;
	}
	return expr.Cast<BoundCastExpression>().child.get();
}
#endif

//! The expression under casts from FLOAT to DOUBLE (which keep every value). Other casts round or
//! change the type and are kept.
inline const Expression &WithoutWideningCasts(const Expression &expr) {
	reference<const Expression> inner = expr;
	while (auto child = CastChild(inner.get())) {
		if (ReturnType(inner.get()).id() != LogicalTypeId::DOUBLE || ReturnType(*child).id() != LogicalTypeId::FLOAT) {
			break;
		}
		inner = *child;
	}
	return inner.get();
}

//===--------------------------------------------------------------------===//
// Vectors and chunks
//===--------------------------------------------------------------------===//

#if HNSW_DUCKDB_VERSION >= 20000
//! The first `count` rows of a vector in unified format (vectors know their size since DuckDB 2.0).
inline void ToUnifiedFormat(const Vector &vector, idx_t count, UnifiedVectorFormat &format) {
	vector.ToUnifiedFormat(format);
}

//! The element vector of an array vector.
inline const Vector &ArrayChild(const Vector &vector) {
	return ArrayVector::GetChild(vector);
}

//! The element vector of an array vector, to write.
inline Vector &ArrayChildMutable(Vector &vector) {
	return ArrayVector::GetChildMutable(vector);
}

//! True when a validity mask has no NULLs because it has no mask at all.
inline bool CannotHaveNull(const ValidityMask &validity) {
	return validity.CannotHaveNull();
}

//! Every element of an array vector in unified format.
inline void ArrayElementsToUnifiedFormat(const Vector &array, UnifiedVectorFormat &format) {
	ArrayVector::GetChild(array).ToUnifiedFormat(format);
}

//! The data of a flat vector, to write.
template <class T> T *MutableData(Vector &vector) {
	return FlatVector::GetDataMutable<T>(vector);
}

//! Sets how many rows a chunk holds (its vectors carry the size since DuckDB 2.0).
inline void SetChunkSize(DataChunk &chunk, idx_t count) {
	chunk.SetChildCardinality(count);
}

//! A ROW_TYPE vector over `count` row ids owned by the caller.
inline Vector RowIdVector(row_t *ids, idx_t count) {
	return Vector(LogicalType::ROW_TYPE, data_ptr_cast(ids), count);
}

//! Makes `result` the constant `value` for `count` rows.
inline void ReferenceConstant(Vector &result, const Value &value, idx_t count) {
	result.Reference(value, count_t(count));
}

//! Makes `result` row `row` of `source` (of `source_count` rows), constant for `count` rows.
inline void ReferenceRow(Vector &result, idx_t count, Vector &source, idx_t row, idx_t source_count) {
	ConstantVector::Reference(result, count_t(count), source, row, source_count);
}
#else
//! The first `count` rows of a vector in unified format (not const before 2.0: it may flatten in place).
inline void ToUnifiedFormat(const Vector &vector, idx_t count, UnifiedVectorFormat &format) {
	const_cast<Vector &>(vector).ToUnifiedFormat(count, format);
}

//! The element vector of an array vector.
inline const Vector &ArrayChild(const Vector &vector) {
	return ArrayVector::GetEntry(vector);
}

//! The element vector of an array vector, to write.
inline Vector &ArrayChildMutable(Vector &vector) {
	return ArrayVector::GetEntry(vector);
}

//! True when a validity mask has no NULLs because it has no mask at all.
inline bool CannotHaveNull(const ValidityMask &validity) {
	return validity.AllValid();
}

//! Every element of an array vector in unified format (a constant array has fewer than rows x size).
inline void ArrayElementsToUnifiedFormat(const Vector &array, UnifiedVectorFormat &format) {
	ToUnifiedFormat(ArrayChild(array), ArrayVector::GetTotalSize(array), format);
}

//! The data of a flat vector, to write.
template <class T> T *MutableData(Vector &vector) {
	return FlatVector::GetData<T>(vector);
}

//! Sets how many rows a chunk holds.
inline void SetChunkSize(DataChunk &chunk, idx_t count) {
	chunk.SetCardinality(count);
}

//! A ROW_TYPE vector over row ids owned by the caller. Before 2.0 a third argument would pick
//! the (type, create_data, zero) constructor and silently give a new zeroed vector.
inline Vector RowIdVector(row_t *ids, idx_t count) {
	return Vector(LogicalType::ROW_TYPE, data_ptr_cast(ids));
}

//! Makes `result` the constant `value` (vectors have no size of their own before DuckDB 2.0).
inline void ReferenceConstant(Vector &result, const Value &value, idx_t count) {
	result.Reference(value);
}

//! Makes `result` the constant value of row `row` of `source` (which holds `source_count` rows).
inline void ReferenceRow(Vector &result, idx_t count, Vector &source, idx_t row, idx_t source_count) {
	ConstantVector::Reference(result, source, row, source_count);
}
#endif

//===--------------------------------------------------------------------===//
// Functions
//===--------------------------------------------------------------------===//

#if HNSW_DUCKDB_VERSION >= 20000
//! Binds a scalar function's argument and return types through `resolve`.
inline void SetResolveTypes(ScalarFunction &function, resolve_scalar_types_t resolve) {
	function.SetResolveTypesCallback(resolve);
}

//! Adds a named positional parameter to a scalar function.
inline void AddParameter(ScalarFunction &function, const string &name, const LogicalType &type) {
	function.GetSignature().AddParameter(Identifier(name), type);
}

//! Adds an optional named parameter `name := value` to a table function (NULL when not given).
inline void AddNamedParameter(TableFunction &function, const string &name, const LogicalType &type) {
	function.GetSignature().AddKeywordOnly(Identifier(name), type, Value(type));
}

//! Shows a scan's statistics in EXPLAIN ANALYZE through `METRICS`.
template <void (*METRICS)(TableFunctionGetMetricsInput &)> void SetScanMetrics(TableFunction &function) {
	function.get_metrics = METRICS;
}

//! The name of the table function a scan calls.
inline const string &ScanFunctionName(const LogicalGet &get) {
	return NameText(get.function.GetName());
}

//! Makes a scan call `function` (bound functions have a class of their own since DuckDB 2.0).
inline void SetScanFunction(LogicalGet &get, const TableFunction &function) {
	get.function = BoundTableFunction(function);
}

//! Readies a scan's projection for its use as an in-out function (nothing to do since DuckDB 2.0,
//! whose in-out operator applies the projection).
inline void PrepareInOutProjection(LogicalGet &get) {
}
#else
//! The scalar function being bound, as a resolve callback sees it (its type since DuckDB 2.0).
class BoundScalarFunction {
public:
	explicit BoundScalarFunction(ScalarFunction &function) : function(function) {
	}
	const string &GetName() const {
		return function.name;
	}
	vector<LogicalType> &GetArguments() {
		return function.arguments;
	}
	void SetReturnType(LogicalType type) {
		function.return_type = std::move(type);
	}

private:
	ScalarFunction &function;
};

//! What a resolve callback gets: the function being bound and its argument expressions (DuckDB
//! 2.0's resolve_types callback; before it, a bind callback does the same).
class ResolveScalarFunctionTypesInput {
public:
	ResolveScalarFunctionTypesInput(ScalarFunction &function, const vector<unique_ptr<Expression>> &arguments)
	    : bound_function(function), arguments(arguments) {
	}
	BoundScalarFunction &GetBoundFunction() {
		return bound_function;
	}
	const vector<unique_ptr<Expression>> &GetArguments() const {
		return arguments;
	}

private:
	BoundScalarFunction bound_function;
	const vector<unique_ptr<Expression>> &arguments;
};

using resolve_scalar_types_t = void (*)(ResolveScalarFunctionTypesInput &input);

//! Carries a function's resolve callback to the bind callback below.
struct ResolveTypesInfo : public ScalarFunctionInfo {
	explicit ResolveTypesInfo(resolve_scalar_types_t resolve) : resolve(resolve) {
	}
	resolve_scalar_types_t resolve;
};

//! A bind callback that only resolves the types (it binds no data).
inline unique_ptr<FunctionData> BindByResolvingTypes(ClientContext &context, ScalarFunction &function,
                                                     vector<unique_ptr<Expression>> &arguments) {
	ResolveScalarFunctionTypesInput input(function, arguments);
	function.function_info->Cast<ResolveTypesInfo>().resolve(input);
	return nullptr;
}

//! Binds a scalar function's argument and return types through `resolve` (a bind callback
//! before DuckDB 2.0).
inline void SetResolveTypes(ScalarFunction &function, resolve_scalar_types_t resolve) {
	function.function_info = make_shared_ptr<ResolveTypesInfo>(resolve);
	function.bind = BindByResolvingTypes;
}

//! Adds a positional parameter to a scalar function (parameters have no names before DuckDB 2.0).
inline void AddParameter(ScalarFunction &function, const string &name, const LogicalType &type) {
	function.arguments.push_back(type);
}

//! Adds an optional named parameter `name := value` to a table function (absent when not given).
inline void AddNamedParameter(TableFunction &function, const string &name, const LogicalType &type) {
	function.named_parameters[name] = type;
}

//! A scan's EXPLAIN ANALYZE statistics as key/value text (DuckDB 2.0's operator metrics input).
struct TableFunctionGetMetricsInput {
	struct Metrics {
		InsertionOrderPreservingMap<string> text;
		void AddExtraInfo(const string &key, const string &value) {
			text[key] = value;
		}
	};
	optional_ptr<GlobalTableFunctionState> global_state;
	Metrics operator_metrics;
};

//! Renders `METRICS` after execution (before DuckDB 2.0 through the dynamic to_string callback).
template <void (*METRICS)(TableFunctionGetMetricsInput &)>
InsertionOrderPreservingMap<string> ScanMetricsText(TableFunctionDynamicToStringInput &input) {
	TableFunctionGetMetricsInput metrics;
	metrics.global_state = input.global_state;
	METRICS(metrics);
	return std::move(metrics.operator_metrics.text);
}

//! Shows a scan's statistics in EXPLAIN ANALYZE through `METRICS`.
template <void (*METRICS)(TableFunctionGetMetricsInput &)> void SetScanMetrics(TableFunction &function) {
	function.dynamic_to_string = ScanMetricsText<METRICS>;
}

//! The name of the table function a scan calls.
inline const string &ScanFunctionName(const LogicalGet &get) {
	return get.function.name;
}

//! Makes a scan call `function`.
inline void SetScanFunction(LogicalGet &get, const TableFunction &function) {
	get.function = function;
}

//! Readies a scan's projection for its use as an in-out function: before DuckDB 2.0 the in-out
//! operator ignores projection_ids and outputs every column id, so they are dropped (operators
//! above find their columns by binding, and the extra ones are filter-only columns).
inline void PrepareInOutProjection(LogicalGet &get) {
	get.projection_ids.clear();
}
#endif

//===--------------------------------------------------------------------===//
// Pushed-down table filters
//===--------------------------------------------------------------------===//

#if HNSW_DUCKDB_VERSION >= 20000
//! True when a scan has pushed-down filters (on one column or several).
inline bool HasTableFilters(const TableFilterSet &set) {
	return set.HasFilters() || set.HasMultiColumnFilters();
}

//! The per-column filters of a set, to iterate (entries: see FilterColumn / FilterOf).
inline const TableFilterSet &TableFilters(const TableFilterSet &set) {
	return set;
}

//! Column position (among the scan's `column_ids`) of a filter entry of a logical scan.
template <class ENTRY> idx_t FilterColumn(const ENTRY &entry, const vector<ColumnIndex> &column_ids) {
	return entry.GetIndex().GetIndex();
}

//! The filter of a filter entry.
template <class ENTRY> const TableFilter &FilterOf(const ENTRY &entry) {
	return entry.Filter();
}

//! A copy of a pushed-down table filter (every one is an ExpressionFilter since DuckDB 2.0).
inline unique_ptr<TableFilter> CopyTableFilter(const TableFilter &filter) {
	return filter.Cast<ExpressionFilter>().Copy();
}

//! A pushed-down table filter as SQL over the named column.
inline string TableFilterText(const TableFilter &filter, const string &column, const LogicalType &type) {
	BoundReferenceExpression ref(Identifier(column), type, 0);
	return filter.ToExpression(ref)->ToString();
}

//! Puts a filter on the column at `position` of a scan's columns.
inline void SetTableFilter(TableFilterSet &set, idx_t position, unique_ptr<TableFilter> filter) {
	set.SetFilterByColumnIndex(ProjectionIndex(position), std::move(filter));
}

//! A logical scan's pushed-down filters, without the one on the column at `position`.
inline void RemoveTableFilter(TableFilterSet &set, idx_t position, const vector<ColumnIndex> &column_ids) {
	set.RemoveFilterByColumnIndex(ProjectionIndex(position));
}
#else
//! True when a scan has pushed-down filters.
inline bool HasTableFilters(const TableFilterSet &set) {
	return !set.filters.empty();
}

//! The per-column filters of a set, to iterate (entries: see FilterColumn / FilterOf).
inline const map<idx_t, unique_ptr<TableFilter>> &TableFilters(const TableFilterSet &set) {
	return set.filters;
}

//! Column position (among the scan's `column_ids`) of a filter entry of a logical scan: before
//! 2.0 a logical scan keys its filters by table column, and the physical plan maps them to
//! positions (an entry of a column the scan does not read gives column_ids.size()).
inline idx_t FilterColumn(const pair<const idx_t, unique_ptr<TableFilter>> &entry,
                          const vector<ColumnIndex> &column_ids) {
	for (idx_t i = 0; i < column_ids.size(); i++) {
		if (!column_ids[i].IsRowIdColumn() && column_ids[i].GetPrimaryIndex() == entry.first) {
			return i;
		}
	}
	return column_ids.size();
}

//! The filter of a filter entry.
inline const TableFilter &FilterOf(const pair<const idx_t, unique_ptr<TableFilter>> &entry) {
	return *entry.second;
}

//! A copy of a pushed-down table filter (of any filter class before DuckDB 2.0).
inline unique_ptr<TableFilter> CopyTableFilter(const TableFilter &filter) {
	return filter.Copy();
}

//! A pushed-down table filter as SQL over the named column.
inline string TableFilterText(const TableFilter &filter, const string &column, const LogicalType &type) {
	BoundReferenceExpression ref(column, type, 0);
	return filter.ToExpression(ref)->ToString();
}

//! Puts a filter on the column at `position` of a scan's columns.
inline void SetTableFilter(TableFilterSet &set, idx_t position, unique_ptr<TableFilter> filter) {
	set.filters[position] = std::move(filter);
}

//! A logical scan's pushed-down filters, without the one on the column at `position` (keyed by
//! table column before 2.0).
inline void RemoveTableFilter(TableFilterSet &set, idx_t position, const vector<ColumnIndex> &column_ids) {
	set.filters.erase(column_ids[position].GetPrimaryIndex());
}
#endif

//! A reference to the scan column at `position` of its column ids (as operators above bind it).
inline unique_ptr<Expression> ScanColumnRef(const LogicalGet &get, idx_t position, const LogicalType &type) {
	return make_uniq<BoundColumnRefExpression>(type, ColumnBinding(get.table_index, ProjectionIndex(position)));
}

//===--------------------------------------------------------------------===//
// Parser and macros
//===--------------------------------------------------------------------===//

#if HNSW_DUCKDB_VERSION >= 20000
//! The query node of a SELECT statement, parsed without a connection (for table macros).
inline unique_ptr<QueryNode> ParseSelectNode(const string &sql) {
	auto parser = Parser::GetBuiltinParser();
	parser.ParseQuery(sql);
	return std::move(parser.statements.back()->Cast<SelectStatement>().node);
}

//! Names a macro in the default schema (which the loader maps to the extension's schema).
inline void SetMacroName(CreateMacroInfo &info, const string &name) {
	info.SetQualifiedName(
	    QualifiedName(info.GetQualifiedName().Catalog(), Identifier::DefaultSchema(), Identifier(name)));
	info.SetFunctionName(Identifier(name));
}

//! A constant as a parsed expression (a macro parameter's default).
inline unique_ptr<ParsedExpression> ParsedConstant(const Value &value) {
	return ConstantExpression::FromValue(value);
}
#else
//! The query node of a SELECT statement, parsed without a connection (for table macros).
inline unique_ptr<QueryNode> ParseSelectNode(const string &sql) {
	Parser parser;
	parser.ParseQuery(sql);
	return std::move(parser.statements.back()->Cast<SelectStatement>().node);
}

//! Names a macro in the default schema (of the system catalog, where the loader puts every
//! extension function before DuckDB 2.0).
inline void SetMacroName(CreateMacroInfo &info, const string &name) {
	info.schema = DEFAULT_SCHEMA;
	info.name = name;
}

//! A constant as a parsed expression (a macro parameter's default).
inline unique_ptr<ParsedExpression> ParsedConstant(const Value &value) {
	return make_uniq<ConstantExpression>(value);
}
#endif

//===--------------------------------------------------------------------===//
// Transactions
//===--------------------------------------------------------------------===//

//! Id of the most recent commit of the database.
inline transaction_t LastCommit(AttachedDatabase &db) {
	return DuckTransactionManager::Get(db).GetLastCommit();
}

#if HNSW_DUCKDB_VERSION >= 20000
//! True when an active transaction may not see the commit `commit_id` (it started earlier), so
//! rows that commit deleted may still be visible to it.
inline bool SnapshotPredates(AttachedDatabase &db, transaction_t commit_id) {
	auto bound = DuckTransactionManager::Get(db).LowestVisibilityBound();
	return bound != VisibilityBound::AllCommitted() && commit_id >= bound;
}
#else
//! True when an active transaction may not see the commit `commit_id` (it started earlier), so
//! rows that commit deleted may still be visible to it. Before DuckDB 2.0 the bound is the lowest
//! start time of the active transactions (and of a running checkpoint), read without a lock;
//! with none active it lies above every commit id. A transaction sees commits below its start.
inline bool SnapshotPredates(AttachedDatabase &db, transaction_t commit_id) {
	return commit_id >= DuckTransactionManager::Get(db).LowestActiveStart();
}
#endif

//===--------------------------------------------------------------------===//
// Table storage
//===--------------------------------------------------------------------===//

//! The row groups of a table's storage (replaced when ALTER TABLE rewrites the table).
inline shared_ptr<RowGroupCollection> TableRowGroups(DataTable &table) {
	return table.GetRowGroupCollection();
}

//! Rows in the table's last row group (0 if it has none).
inline idx_t LastRowGroupRows(RowGroupCollection &row_groups) {
	auto tree = row_groups.GetRowGroups();
	auto lock = tree->Lock();
	auto last = tree->GetLastSegment(lock);
	return last ? last->GetCount() : 0;
}

//! Makes the next append to the table start a new row group; the caller holds the table's append
//! lock (as index appends at commit do).
inline void StartRowGroupOnNextAppend(RowGroupCollection &row_groups) {
	row_groups.SetRowGroupAppendMode(RowGroupAppendMode::REQUIRE_NEW);
}

//===--------------------------------------------------------------------===//
// Indexes
//===--------------------------------------------------------------------===//

#if HNSW_DUCKDB_VERSION >= 20000
//! The name CREATE INDEX gives the index.
inline const Identifier &IndexNameOf(const CreateIndexInfo &info) {
	return info.GetIndexName();
}

//! True when an allocator's buffers have no blocks in the file yet (a read-only WAL replay keeps
//! them as transient blocks).
inline bool HasTransientBlocks(const FixedSizeAllocatorInfo &info) {
	return info.transient_block_handles != nullptr;
}
#else
//! The name CREATE INDEX gives the index (a field before DuckDB 2.0).
inline const string &IndexNameOf(const CreateIndexInfo &info) {
	return info.index_name;
}

//! True when an allocator's buffers have no blocks in the file yet: never before DuckDB 2.0, whose
//! WAL replay always writes index buffers into blocks.
inline bool HasTransientBlocks(const FixedSizeAllocatorInfo &info) {
	return false;
}
#endif

#if HNSW_DUCKDB_VERSION >= 20000
//! The base class of the HNSW index.
using BoundIndexBase = BoundIndex;

//! Holds an index's own lock for a scope (RAII since DuckDB 2.0).
using ScopedIndexLock = IndexLock;

//! A table's index entry, as ForEachIndexEntry hands it out (it outlives DROP INDEX since DuckDB 2.0).
using IndexEntryRef = shared_ptr<IndexEntry>;

//! Calls `fn(entry)` for each index entry of the table while its index list is locked, until `fn`
//! returns false.
template <class FUNC> void ForEachIndexEntry(DataTableInfo &table_info, FUNC &&fn) {
	for (const auto &entry : table_info.GetIndexes().IndexEntries()) {
		if (!fn(entry)) {
			return;
		}
	}
}

//! Binds the table's unbound indexes of one type.
inline void BindIndexesOfType(ClientContext &context, DataTableInfo &table_info, const string &index_type) {
	table_info.BindIndexes(context, index_type);
}

//! Sets the table's index entries of a type (any case) left in state BINDING back to UNBOUND;
//! returns how many.
inline idx_t ResetBindingIndexes(DataTableInfo &table_info, const string &index_type) {
	idx_t reset = 0;
	for (const auto &entry : table_info.GetIndexes().IndexEntries()) {
		if (entry->GetBindState() == IndexBindState::BINDING &&
		    StringUtil::CIEquals(entry->GetIndexType(), index_type)) {
			entry->SetBindState(IndexBindState::UNBOUND);
			reset++;
		}
	}
	return reset;
}
#else
//! The base class of the HNSW index: before DuckDB 2.0 GetInMemorySize and
//! GetConstraintViolationMessage are not const; these forward to the const forms it implements.
class BoundIndexBase : public BoundIndex {
public:
	using BoundIndex::BoundIndex;
	using BoundIndex::GetInMemorySize;

	virtual idx_t GetInMemorySize(IndexLock &state) const = 0;
	idx_t GetInMemorySize(IndexLock &state) final {
		return static_cast<const BoundIndexBase &>(*this).GetInMemorySize(state);
	}
	virtual string GetConstraintViolationMessage(VerifyExistenceType verify_type, idx_t failed_index,
	                                             DataChunk &input) const = 0;
	string GetConstraintViolationMessage(VerifyExistenceType verify_type, idx_t failed_index, DataChunk &input) final {
		return static_cast<const BoundIndexBase &>(*this).GetConstraintViolationMessage(verify_type, failed_index,
		                                                                                input);
	}
};

//! Holds an index's own lock for a scope (a plain struct filled by InitializeLock before DuckDB 2.0).
struct ScopedIndexLock : public IndexLock {
	explicit ScopedIndexLock(BoundIndex &index) {
		index.InitializeLock(*this);
	}
};

// Before DuckDB 2.0 an index entry has no read/write handles and DROP INDEX destroys it under the
// table's index list lock (a plain mutex), which every DuckDB path that reads, changes, binds,
// serializes or drops a table's index also holds (DuckDB's own ART scan included). A handle
// therefore keeps that list lock: it excludes commits (appends, deletes), checkpoints, VACUUM,
// binding and DROP INDEX, as 2.0's entry lock does, but it also excludes other handles, so
// searches of one table's indexes run one at a time. A handle must be released by the thread that
// took it, and while it holds one that thread must not touch the table's index list nor lock its
// row groups (a commit locks the row groups, then the index list).

//! The lock on a table's index list, shared by an iteration and the handles taken during it.
using IndexListLock = TableIndexIterationHelper<IndexEntry>;

//! Shared access to a bound index (DuckDB 2.0's IndexReadHandle): holds the table's index list lock.
template <class TARGET> class IndexReadHandle {
public:
	IndexReadHandle(shared_ptr<IndexListLock> list_lock, const TARGET &index)
	    : list_lock(std::move(list_lock)), index(&index) {
	}
	IndexReadHandle(IndexReadHandle &&) = default;
	IndexReadHandle &operator=(IndexReadHandle &&) = delete;

	const TARGET *operator->() const & {
		return index;
	}
	const TARGET *operator->() const && = delete;

private:
	shared_ptr<IndexListLock> list_lock;
	const TARGET *index;
};

//! Exclusive access to a bound index (DuckDB 2.0's IndexWriteHandle): holds the table's index list lock.
template <class TARGET> class IndexWriteHandle {
public:
	IndexWriteHandle(shared_ptr<IndexListLock> list_lock, TARGET &index)
	    : list_lock(std::move(list_lock)), index(&index) {
	}
	IndexWriteHandle(IndexWriteHandle &&) = default;
	IndexWriteHandle &operator=(IndexWriteHandle &&) = delete;

	TARGET *operator->() & {
		return index;
	}
	TARGET *operator->() && = delete;

private:
	shared_ptr<IndexListLock> list_lock;
	TARGET *index;
};

//! A table's index entry, as ForEachIndexEntry hands it out, with DuckDB 2.0's IndexEntry calls.
//! Name, type and bind state are read when it is made (under the list lock); a copy kept after the
//! iteration only identifies the entry (operator==) and takes no handles.
class IndexEntryRef {
public:
	IndexEntryRef() : entry(nullptr), bind_state(IndexBindState::UNBOUND) {
	}
	IndexEntryRef(const shared_ptr<IndexListLock> &list_lock, IndexEntry &entry)
	    : list_lock(list_lock), entry(&entry), name(entry.index->GetIndexName()),
	      index_type(entry.index->GetIndexType()), bind_state(entry.bind_state.load()) {
	}

	const IndexEntryRef *operator->() const {
		return this;
	}
	bool operator==(const IndexEntryRef &other) const {
		return entry == other.entry;
	}
	bool operator!=(const IndexEntryRef &other) const {
		return entry != other.entry;
	}
	explicit operator bool() const {
		return entry != nullptr;
	}

	const string &GetName() const {
		return name;
	}
	const string &GetIndexType() const {
		return index_type;
	}
	IndexBindState GetBindState() const {
		return bind_state;
	}

	template <class TARGET> IndexReadHandle<TARGET> GetReadHandle() const {
		auto lock = LockedList();
		return IndexReadHandle<TARGET>(lock, entry->index->Cast<TARGET>());
	}
	template <class TARGET> IndexWriteHandle<TARGET> GetWriteHandle() const {
		auto lock = LockedList();
		return IndexWriteHandle<TARGET>(lock, entry->index->Cast<TARGET>());
	}

private:
	//! The list lock of the iteration under way; handles are only taken during one.
	shared_ptr<IndexListLock> LockedList() const {
		auto lock = list_lock.lock();
		if (!lock || bind_state != IndexBindState::BOUND || !entry->index->IsBound()) {
			throw InternalException("HNSW: an index handle was asked for outside an iteration or of an unbound index");
		}
		return lock;
	}

	weak_ptr<IndexListLock> list_lock;
	IndexEntry *entry;
	string name;
	string index_type;
	IndexBindState bind_state;
};

//! Calls `fn(entry)` for each index entry of the table while its index list is locked, until `fn`
//! returns false. Handles taken from the entries keep the list locked after it returns.
template <class FUNC> void ForEachIndexEntry(DataTableInfo &table_info, FUNC &&fn) {
	auto list_lock = make_shared_ptr<IndexListLock>(table_info.GetIndexes().IndexEntries());
	for (auto &entry : *list_lock) {
		if (!fn(IndexEntryRef(list_lock, entry))) {
			return;
		}
	}
}

//! Binds the table's unbound indexes of one type.
inline void BindIndexesOfType(ClientContext &context, DataTableInfo &table_info, const string &index_type) {
	table_info.BindIndexes(context, index_type.c_str());
}

//! Sets the table's index entries of a type (any case) left in state BINDING back to UNBOUND;
//! returns how many.
inline idx_t ResetBindingIndexes(DataTableInfo &table_info, const string &index_type) {
	idx_t reset = 0;
	IndexListLock entries(table_info.GetIndexes().IndexEntries());
	for (auto &entry : entries) {
		if (entry.bind_state == IndexBindState::BINDING &&
		    StringUtil::CIEquals(entry.index->GetIndexType(), index_type)) {
			entry.bind_state = IndexBindState::UNBOUND;
			reset++;
		}
	}
	return reset;
}
#endif

} // namespace hnsw
} // namespace duckdb
