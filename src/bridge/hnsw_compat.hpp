// Differences between the DuckDB versions the bridge compiles against live here, nowhere else.
#pragma once

#include "duckdb.hpp"
#include "duckdb/parser/expression/constant_expression.hpp"
#include "duckdb/parser/parsed_data/create_macro_info.hpp"
#include "duckdb/parser/parser.hpp"
#include "duckdb/parser/statement/select_statement.hpp"
#include "duckdb/planner/expression/bound_cast_expression.hpp"
#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/expression/bound_comparison_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/planner/filter/expression_filter.hpp"
#include "duckdb/planner/table_filter_set.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/row_group_collection.hpp"
#include "duckdb/storage/table/row_group_segment_tree.hpp"
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

//! Column position of a pushed-down table filter (a ProjectionIndex since DuckDB 2.0).
inline idx_t FilterColumn(const ProjectionIndex &index) {
	return index.GetIndex();
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

//! A scan's pushed-down filters, without the one on the column at `position`.
inline void RemoveTableFilter(TableFilterSet &set, idx_t position) {
	set.RemoveFilterByColumnIndex(ProjectionIndex(position));
}

//! A reference to the scan column at `position` of its column ids (as operators above bind it).
inline unique_ptr<Expression> ScanColumnRef(const LogicalGet &get, idx_t position, const LogicalType &type) {
	return make_uniq<BoundColumnRefExpression>(type, ColumnBinding(get.table_index, ProjectionIndex(position)));
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

//! The expression under casts from FLOAT to DOUBLE (which keep every value; casts are function
//! expressions since DuckDB 2.0). Other casts round or change the type and are kept.
inline const Expression &WithoutWideningCasts(const Expression &expr) {
	reference<const Expression> inner = expr;
	while (BoundCastExpression::IsCast(inner.get())) {
		auto &child = BoundCastExpression::Child(inner.get().Cast<BoundFunctionExpression>());
		if (inner.get().GetReturnType().id() != LogicalTypeId::DOUBLE ||
		    child.GetReturnType().id() != LogicalTypeId::FLOAT) {
			break;
		}
		inner = child;
	}
	return inner.get();
}

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

} // namespace hnsw
} // namespace duckdb
