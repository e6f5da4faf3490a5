// Filtered top-k: the WHERE clause of `SELECT ... FROM t WHERE <p> ORDER BY <distance> LIMIT k`.
// DuckDB's optimizers leave it in two places, both kept in the plan:
//
//     TOP_N k by d
//       PROJECTION d = <distance>(t.col, q) [, PROJECTION ...]
//         FILTER <conjuncts DuckDB could not push into the scan>      (optional)
//           GET t  (table filters: the pushed-down conjuncts)
//
// The rewrite copies both into the HNSW_INDEX_SCAN's bind data: at run time the scan lets DuckDB
// evaluate them over the predicate's columns into the set of matching rows (the table filters
// prune row groups and are evaluated again as expressions), and the core
// searches among those. The FILTER stays above the scan and re-checks the k candidates.
//
// A bound on the ordering distance (`WHERE <distance>(v, q) < c`) is not evaluated over every
// row: the core's search stops at it, and a FILTER above the scan re-checks it exactly.
#include "optimizer/hnsw_topn.hpp"
#include "hnsw_compat.hpp"

#include "duckdb/planner/expression/bound_constant_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/planner/operator/logical_filter.hpp"
#include "duckdb/planner/operator/logical_projection.hpp"

namespace duckdb {
namespace hnsw {

//! Copies `expr` (over the output of `op`) with column references replaced by the expressions
//! that compute them, down through projections and filters.
unique_ptr<Expression> InlineProjections(const Expression &expr, LogicalOperator &op) {
	auto copy = expr.Copy();
	ExpressionIterator::EnumerateExpression(copy, [&](unique_ptr<Expression> &child) {
		if (child->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
			return;
		}
		auto &binding = BindingOf(child->Cast<BoundColumnRefExpression>());
		reference<LogicalOperator> source = op;
		while (source.get().type == LogicalOperatorType::LOGICAL_FILTER) {
			source = *source.get().children[0]; // filters pass their child's bindings through
		}
		if (source.get().type != LogicalOperatorType::LOGICAL_PROJECTION) {
			return;
		}
		auto &projection = source.get().Cast<LogicalProjection>();
		if (binding.table_index != projection.table_index) {
			return;
		}
		child = InlineProjections(*projection.expressions[binding.column_index], *projection.children[0]);
	});
	return copy;
}

//! Position of a table column among the predicate's columns, added if new.
static idx_t PredicateColumn(HNSWScanBindData &bind, const ColumnIndex &column) {
	for (idx_t i = 0; i < bind.predicate_columns.size(); i++) {
		auto &known = bind.predicate_columns[i];
		if (known.IsRowIdColumn() == column.IsRowIdColumn() &&
		    (column.IsRowIdColumn() || known.GetPrimaryIndex() == column.GetPrimaryIndex())) {
			return i;
		}
	}
	bind.predicate_columns.push_back(column);
	return bind.predicate_columns.size() - 1;
}

//! Relative slack added to a distance bound: the core's distances and DuckDB's differ in the last
//! bits, and the FILTER above re-checks the exact bound on the candidates.
constexpr double BOUND_SLACK = 1e-4;

//! The bound a conjunct puts on the ORDER BY key, in the index metric's units: `key < c` or
//! `key <= c` for an ascending key (a distance), `key > c` or `key >= c` for a descending one (a
//! similarity). False if the conjunct is anything else.
static bool DistanceBound(const Expression &conjunct, const Expression &key, OrderType direction, float &bound) {
	ExpressionType type;
	const Expression *side, *value;
	if (!ComparisonParts(conjunct, type, side, value)) {
		return false;
	}
	if (value->GetExpressionClass() != ExpressionClass::BOUND_CONSTANT) {
		std::swap(side, value);
		type = FlipComparisonExpression(type);
	}
	if (value->GetExpressionClass() != ExpressionClass::BOUND_CONSTANT || !WithoutWideningCasts(*side).Equals(key)) {
		return false; // (a rounding cast would make the bound on the distance itself looser)
	}
	bool below = type == ExpressionType::COMPARE_LESSTHAN || type == ExpressionType::COMPARE_LESSTHANOREQUALTO;
	bool above = type == ExpressionType::COMPARE_GREATERTHAN || type == ExpressionType::COMPARE_GREATERTHANOREQUALTO;
	if (direction == OrderType::ASCENDING ? !below : !above) {
		return false; // a bound on the far side: an ordinary predicate
	}
	auto constant = ConstantValue(value->Cast<BoundConstantExpression>());
	if (constant.IsNull() || !constant.type().IsNumeric()) {
		return false;
	}
	double c = constant.DefaultCastAs(LogicalType::DOUBLE).GetValue<double>();
	if (!std::isfinite(c)) {
		return false;
	}
	auto name = FunctionName(key.Cast<BoundFunctionExpression>());
	if (name == "array_negative_inner_product" || name == "array_inner_product") {
		return false; // inner products round relative to the vectors' norms, unknown here
	}
	double core;
	if (name == "array_distance") {
		core = c < 0 ? -1.0 : c * c; // the core ranks by the squared distance
	} else if (name == "array_cosine_similarity") {
		core = 1.0 - c;
	} else {
		core = c; // the core's own units: l2sq, cosine distance, 1 - similarity
	}
	core += BOUND_SLACK * MaxValue(1.0, std::fabs(core));
	bound = core >= double(NumericLimits<float>::Maximum()) ? std::numeric_limits<float>::infinity()
	                                                        : static_cast<float>(core);
	return true;
}

bool TakePredicate(unique_ptr<LogicalOperator> &get_slot, const vector<reference<LogicalFilter>> &filters,
                   const Expression &key, OrderType direction, bool bounds, HNSWScanBindData &bind) {
	auto &get = get_slot->Cast<LogicalGet>();
	// Filters over several columns at once only prune row groups: DuckDB keeps their conjunct in
	// a FILTER above the scan, which the predicate includes, so they are left out here.
	auto &column_ids = get.GetColumnIds();
	auto usable = [&](const ColumnIndex &column) {
		return column.IsRowIdColumn() || (!column.IsVirtualColumn() && !column.HasType());
	};
	vector<string> text;
	float bound = std::numeric_limits<float>::infinity();
	// Conjuncts DuckDB left in FILTER operators: over this scan's columns only, never volatile.
	vector<unique_ptr<Expression>> predicate;
	for (auto &filter : filters) {
		for (auto &expression : filter.get().expressions) {
			if (expression->IsVolatile() || expression->HasSubquery()) {
				return false; // random() and the like must see every row: keep the exact plan
			}
			float conjunct_bound;
			if (bounds && DistanceBound(*expression, key, direction, conjunct_bound)) {
				// A distance bound: the search stops at it; the FILTER re-checks it exactly.
				bound = MinValue(bound, conjunct_bound);
				text.push_back(expression->ToString());
				continue;
			}
			bool own_columns = true;
			auto copy = expression->Copy();
			ExpressionIterator::EnumerateExpression(copy, [&](unique_ptr<Expression> &child) {
				if (child->GetExpressionClass() == ExpressionClass::BOUND_PARAMETER) {
					return; // a prepared parameter: its value is read when the scan runs
				}
				if (child->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
					return;
				}
				auto &binding = BindingOf(child->Cast<BoundColumnRefExpression>());
				if (binding.table_index != get.table_index || binding.column_index >= column_ids.size() ||
				    !usable(column_ids[binding.column_index])) {
					own_columns = false;
					return;
				}
				auto position = PredicateColumn(bind, column_ids[binding.column_index]);
				child = make_uniq<BoundReferenceExpression>(ReturnType(*child), position);
			});
			if (!own_columns) {
				return false; // it reads another input (a join's other side): keep the exact plan
			}
			text.push_back(expression->ToString());
			predicate.push_back(std::move(copy));
		}
	}
	// Conjuncts DuckDB pushed into the table scan.
	auto pushed = make_uniq<TableFilterSet>();
	vector<idx_t> moved_up;
	vector<unique_ptr<Expression>> bound_checks;
	for (auto &entry : TableFilters(get.table_filters)) {
		auto index = FilterColumn(entry, column_ids);
		if (index >= column_ids.size() || !usable(column_ids[index])) {
			return false;
		}
		if (bounds && !column_ids[index].IsRowIdColumn() && column_ids[index].GetPrimaryIndex() == bind.vector_column) {
			// A bound on the distance (`WHERE <distance>(v, q) < c`) pushed into the scan: the
			// search stops at it, and a FILTER above the scan re-checks it on the candidates.
			auto &type = bind.table.GetColumn(LogicalIndex(bind.vector_column)).Type();
			auto conjunct = FilterOf(entry).ToExpression(*ScanColumnRef(get, index, type));
			float conjunct_bound;
			bool output = get.projection_ids.empty() || std::find(get.projection_ids.begin(), get.projection_ids.end(),
			                                                      index) != get.projection_ids.end();
			if (output && DistanceBound(*conjunct, key, direction, conjunct_bound)) {
				bound = MinValue(bound, conjunct_bound);
				text.push_back(conjunct->ToString());
				moved_up.push_back(index);
				bound_checks.push_back(std::move(conjunct));
				continue;
			}
		}
		auto position = PredicateColumn(bind, column_ids[index]);
		string name = "rowid";
		auto type = LogicalType(LogicalType::ROW_TYPE);
		if (!column_ids[index].IsRowIdColumn()) {
			auto &definition = bind.table.GetColumn(LogicalIndex(column_ids[index].GetPrimaryIndex()));
			name = NameText(definition.Name());
			type = definition.Type();
		}
		text.push_back(TableFilterText(FilterOf(entry), name, type));
		SetTableFilter(*pushed, position, CopyTableFilter(FilterOf(entry)));
		// Also evaluated over the scan's output: a scan of committed and uncommitted rows shares
		// one filter state, and a zonemap that proves a filter true for one part switches it off
		// for the other (DuckDB 2.0.0).
		BoundReferenceExpression ref(type, position);
		predicate.push_back(FilterOf(entry).ToExpression(ref));
	}
	if (text.empty()) {
		return true; // no WHERE clause
	}
	for (auto index : moved_up) {
		RemoveTableFilter(get.table_filters, index, column_ids);
	}
	if (!bound_checks.empty()) {
		auto check = make_uniq<LogicalFilter>();
		check->expressions = std::move(bound_checks);
		check->children.push_back(std::move(get_slot));
		check->ResolveOperatorTypes();
		get_slot = std::move(check);
	}
	bind.max_distance = bound;
	bind.filtered = true;
	bind.predicate = std::move(predicate);
	bind.predicate_filters = HasTableFilters(*pushed) ? std::move(pushed) : nullptr;
	bind.predicate_text = StringUtil::Join(text, " AND ");
	return true;
}

} // namespace hnsw
} // namespace duckdb
