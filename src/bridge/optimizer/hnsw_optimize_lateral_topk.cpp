// A LATERAL top-k join as one scan. DuckDB 2.0 decorrelates `outer o, LATERAL (SELECT ... FROM t
// ORDER BY <distance>(t.v, o.q) LIMIT k)` into a top-k per distinct query vector joined back to
// the outer rows on that vector; after the aggregate rewrite (hnsw_optimize_topk_aggregate.cpp)
// its scan is already the index's:
//
//     COMPARISON_JOIN INNER on g IS NOT DISTINCT FROM o.q       PROJECTION (the join's columns)
//       PROJECTION (fields of the struct)                         HNSW_INDEX_SCAN t (in-out, exact
//         UNNEST                                                    top-k: per outer row its k
//           AGGREGATE [g]                                ==>        nearest rows, the distance, the
//             arg_min_nulls_last(struct_pack(..), d, k)              outer columns)
//             PROJECTION d = <distance>(t.v, g) ...                   PROJECTION (o.q, o.*)
//               HNSW_INDEX_SCAN t (in-out, candidates)                  CTE_SCAN o
//                 ... DISTINCT g <- CTE_SCAN o
//       CTE_SCAN o
//
// The scan ranks each outer row's candidates with the query's own distance expression, so values
// and ties are the exact plan's; it drops the DISTINCT, the aggregate over the vector, the UNNEST
// and the hash join on the FLOAT[n] vector, which cost more than the searches. DuckDB 1.5 plans
// the join through DELIM_JOIN and keeps the aggregate plan.
#include "optimizer/hnsw_topn.hpp"
#include "hnsw_compat.hpp"

#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/expression/bound_aggregate_expression.hpp"
#include "duckdb/planner/expression/bound_constant_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/planner/logical_operator_visitor.hpp"
#include "duckdb/planner/operator/logical_comparison_join.hpp"
#include "duckdb/planner/operator/logical_cteref.hpp"
#include "duckdb/planner/operator/logical_unnest.hpp"

namespace duckdb {
namespace hnsw {

//! The operators between the join and the in-out scan that the rewrite reads.
struct TopKChain {
	LogicalAggregate *aggregate = nullptr;
	bool unnested = false;
	LogicalGet *get = nullptr;
	unique_ptr<LogicalOperator> *get_slot = nullptr;
};

//! struct_extract(struct_pack(a, b, ...), 'b') as the packed field itself (DuckDB carries the
//! LATERAL's columns in a struct through the top-k aggregate); any other expression unchanged.
static unique_ptr<Expression> FieldOfPack(unique_ptr<Expression> expr) {
	if (expr->GetExpressionClass() != ExpressionClass::BOUND_FUNCTION) {
		return expr;
	}
	auto &extract = expr->Cast<BoundFunctionExpression>();
	if (FunctionName(extract) != "struct_extract" || Children(extract).size() != 2) {
		return expr;
	}
	auto &pack = *Children(extract)[0];
	auto &name = *Children(extract)[1];
	if (pack.GetExpressionClass() != ExpressionClass::BOUND_FUNCTION ||
	    FunctionName(pack.Cast<BoundFunctionExpression>()) != "struct_pack" ||
	    name.GetExpressionClass() != ExpressionClass::BOUND_CONSTANT) {
		return expr;
	}
	auto &value = ConstantValue(name.Cast<BoundConstantExpression>());
	if (value.IsNull() || value.type().id() != LogicalTypeId::VARCHAR) {
		return expr;
	}
	auto &fields = StructType::GetChildTypes(ReturnType(pack));
	auto &packed = Children(pack.Cast<BoundFunctionExpression>());
	for (idx_t i = 0; i < fields.size() && i < packed.size(); i++) {
		if (NameText(fields[i].first) == StringValue::Get(value)) {
			return packed[i]->Copy();
		}
	}
	return expr;
}

//! Copies `expr` (over the output of `op`) down to the in-out scan's bindings: through
//! projections, the UNNEST of the top-k list (whose element is the aggregate's first argument)
//! and the aggregate's groups; null if it reads anything else.
static unique_ptr<Expression> DownToScan(const Expression &expr, LogicalOperator &op, const TopKChain &chain) {
	if (&op == chain.get) {
		return expr.Copy();
	}
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		auto copy = expr.Copy();
		bool ok = true;
		ExpressionIterator::EnumerateChildren(*copy, [&](unique_ptr<Expression> &child) {
			child = ok ? DownToScan(*child, op, chain) : nullptr;
			ok = ok && child;
		});
		return ok ? FieldOfPack(std::move(copy)) : nullptr;
	}
	auto &binding = BindingOf(expr.Cast<BoundColumnRefExpression>());
	if (op.type == LogicalOperatorType::LOGICAL_PROJECTION) {
		auto &projection = op.Cast<LogicalProjection>();
		if (binding.table_index != projection.table_index) {
			return nullptr;
		}
		return DownToScan(*projection.expressions[binding.column_index], *op.children[0], chain);
	}
	auto &aggregate = *chain.aggregate;
	auto element = [&]() {
		return DownToScan(*Children(aggregate.expressions[0]->Cast<BoundAggregateExpression>())[0],
		                  *aggregate.children[0], chain);
	};
	if (op.type == LogicalOperatorType::LOGICAL_UNNEST) {
		auto &unnest = op.Cast<LogicalUnnest>();
		if (binding.table_index != unnest.unnest_index) {
			return DownToScan(expr, *op.children[0], chain); // the aggregate's columns pass through
		}
		return binding.column_index == 0 ? element() : nullptr; // (1: a row number)
	}
	if (&op == &aggregate) {
		if (binding.table_index == aggregate.group_index) {
			return DownToScan(*aggregate.groups[binding.column_index], *op.children[0], chain);
		}
		if (binding.table_index == aggregate.aggregate_index && !chain.unnested) {
			return element(); // top-1: the aggregate's value is the element itself
		}
	}
	return nullptr;
}

//! The output position of the old scan's outer column that `expr` (over the scan) is, or invalid.
static optional_idx OuterColumn(const unique_ptr<Expression> &expr, LogicalGet &get, idx_t table_outputs) {
	if (!expr || expr->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		return optional_idx();
	}
	auto &binding = BindingOf(expr->Cast<BoundColumnRefExpression>());
	idx_t position = binding.column_index;
	if (binding.table_index != get.table_index || position < table_outputs) {
		return optional_idx();
	}
	return position;
}

//! True when the plan below `op` reads the CTE `cte_index` (the DISTINCT of the outer rows).
static bool ReadsCTE(LogicalOperator &op, TableIndex cte_index) {
	if (op.type == LogicalOperatorType::LOGICAL_CTE_REF && op.Cast<LogicalCTERef>().cte_index == cte_index) {
		return true;
	}
	for (auto &child : op.children) {
		if (ReadsCTE(*child, cte_index)) {
			return true;
		}
	}
	return false;
}

//! Finds PROJECTION* [UNNEST] AGGREGATE PROJECTION* in-out HNSW_INDEX_SCAN below `op`.
static bool FindChain(unique_ptr<LogicalOperator> &op, TopKChain &chain) {
	auto slot = &op;
	while ((*slot)->type == LogicalOperatorType::LOGICAL_PROJECTION) {
		slot = &(*slot)->children[0];
	}
	if ((*slot)->type == LogicalOperatorType::LOGICAL_UNNEST) {
		chain.unnested = true;
		slot = &(*slot)->children[0];
	}
	if ((*slot)->type != LogicalOperatorType::LOGICAL_AGGREGATE_AND_GROUP_BY) {
		return false;
	}
	chain.aggregate = &(*slot)->Cast<LogicalAggregate>();
	slot = &(*slot)->children[0];
	while ((*slot)->type == LogicalOperatorType::LOGICAL_PROJECTION) {
		slot = &(*slot)->children[0];
	}
	if ((*slot)->type != LogicalOperatorType::LOGICAL_GET || (*slot)->children.size() != 1) {
		return false;
	}
	auto &get = (*slot)->Cast<LogicalGet>();
	if (ScanFunctionName(get) != "hnsw_index_scan" || !get.bind_data) {
		return false;
	}
	chain.get = &get;
	chain.get_slot = slot;
	return true;
}

//! Maps expressions over the old in-out scan to the fused one: table columns stay, the distance
//! becomes the scan's distance column, outer columns (the groups) become the outer row's columns.
struct ScanRemap {
	TableIndex table_index;
	idx_t table_outputs = 0;
	const Expression *key = nullptr;
	idx_t distance_position = 0;
	//! Old output position of an outer column -> new output position.
	unordered_map<idx_t, idx_t> outer;

	unique_ptr<Expression> Apply(const Expression &expr) const {
		if (expr.Equals(*key)) {
			return make_uniq<BoundColumnRefExpression>(ReturnType(expr),
			                                           ColumnBinding(table_index, ProjectionIndex(distance_position)));
		}
		if (expr.GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF) {
			auto &binding = BindingOf(expr.Cast<BoundColumnRefExpression>());
			if (binding.table_index != table_index) {
				return nullptr;
			}
			idx_t position = binding.column_index;
			if (position < table_outputs) {
				return expr.Copy();
			}
			auto entry = outer.find(position);
			if (entry == outer.end()) {
				return nullptr; // an outer column that is not a group
			}
			return make_uniq<BoundColumnRefExpression>(ReturnType(expr),
			                                           ColumnBinding(table_index, ProjectionIndex(entry->second)));
		}
		auto copy = expr.Copy();
		bool ok = true;
		ExpressionIterator::EnumerateChildren(*copy, [&](unique_ptr<Expression> &child) {
			child = ok ? Apply(*child) : nullptr;
			ok = ok && child;
		});
		return ok ? std::move(copy) : nullptr;
	}
};

//! The distance over the scan's output columns as BOUND_REFs (table columns by position, then the
//! query vector at `table_outputs`), for the scan to evaluate; null if it reads anything else.
static unique_ptr<Expression> DistanceOverRow(const Expression &key, TableIndex table_index, idx_t table_outputs,
                                              idx_t query_position) {
	if (key.GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF) {
		auto &binding = BindingOf(key.Cast<BoundColumnRefExpression>());
		idx_t position = binding.column_index;
		if (binding.table_index != table_index || (position >= table_outputs && position != query_position)) {
			return nullptr;
		}
		return make_uniq<BoundReferenceExpression>(ReturnType(key),
		                                           position < table_outputs ? position : table_outputs);
	}
	auto copy = key.Copy();
	bool ok = true;
	ExpressionIterator::EnumerateChildren(*copy, [&](unique_ptr<Expression> &child) {
		child = ok ? DistanceOverRow(*child, table_index, table_outputs, query_position) : nullptr;
		ok = ok && child;
	});
	return ok ? std::move(copy) : nullptr;
}

bool TryFuseLateralTopK(unique_ptr<LogicalOperator> &join_slot, Binder &binder, vector<FusedJoin> &fused) {
	if (join_slot->type != LogicalOperatorType::LOGICAL_COMPARISON_JOIN) {
		return false; // DuckDB 1.5's DELIM_JOIN, or another join
	}
	auto &join = join_slot->Cast<LogicalComparisonJoin>();
	if (join.join_type != JoinType::INNER || join.conditions.empty()) {
		return false; // the decorrelated LATERAL top-k is an inner join on the correlated columns
	}
	idx_t outer_side = join.children[1]->type == LogicalOperatorType::LOGICAL_CTE_REF ? 1 : 0;
	auto &outer = *join.children[outer_side];
	if (outer.type != LogicalOperatorType::LOGICAL_CTE_REF) {
		return false; // the outer rows are read back from the CTE of the decorrelation
	}
	auto &topk_slot = join.children[1 - outer_side];
	TopKChain chain;
	if (!FindChain(topk_slot, chain)) {
		return false;
	}
	auto &get = *chain.get;
	auto &old_bind = get.bind_data->Cast<HNSWScanBindData>();
	if (old_bind.distance || old_bind.query_column != 0 ||
	    !ReadsCTE(*get.children[0], outer.Cast<LogicalCTERef>().cte_index)) {
		return false; // not the in-out scan over the DISTINCT of these outer rows
	}
	auto &aggregate = *chain.aggregate;
	if (aggregate.expressions.size() != 1 || aggregate.grouping_sets.size() > 1 || aggregate.groups.empty() ||
	    aggregate.groups.size() != join.conditions.size()) {
		return false; // one top-k per value of the join columns, nothing else
	}
	unique_ptr<Expression> key;
	OrderType direction;
	idx_t k;
	if (!MatchTopKAggregate(*aggregate.expressions[0], *aggregate.children[0], key, direction, k) || k != old_bind.k) {
		return false;
	}
	auto &top_k = aggregate.expressions[0]->Cast<BoundAggregateExpression>();
	if ((Children(top_k).size() == 3) != chain.unnested) {
		return false; // a list not unnested, or a single value unnested
	}
	auto key_type = ReturnType(*key).id();
	if (key_type != LogicalTypeId::FLOAT && key_type != LogicalTypeId::DOUBLE) {
		return false; // the scan ranks FLOAT / DOUBLE distances
	}
	bool nulls_last = StringUtil::EndsWith(FunctionName(top_k), "_nulls_last");

	// The old scan's outputs: table columns, then outer columns (the DISTINCT values).
	auto &ids = get.GetColumnIds();
	auto outputs = get.projection_ids.empty() ? ids.size() : get.projection_ids.size();
	ScanRemap remap;
	remap.table_index = get.table_index;
	remap.table_outputs = outputs;
	for (idx_t i = 0; i < outputs; i++) {
		auto &column = ids[get.projection_ids.empty() ? i : get.projection_ids[i]];
		bool passed = !column.IsVirtualColumn() && column.GetPrimaryIndex() >= old_bind.passthrough_base;
		if (passed && remap.table_outputs == outputs) {
			remap.table_outputs = i;
		} else if (!passed && remap.table_outputs != outputs) {
			return false; // outer columns are expected after the table's
		}
	}
	// The groups: outer columns of the old scan (the DISTINCT values).
	auto fused_outer_base = remap.table_outputs;
	unordered_set<idx_t> group_columns;
	for (auto &group : aggregate.groups) {
		auto column = OuterColumn(DownToScan(*group, *aggregate.children[0], chain), get, remap.table_outputs);
		if (!column.IsValid() || group_columns.count(column.GetIndex())) {
			return false; // a group that is not one outer column of the scan
		}
		group_columns.insert(column.GetIndex());
	}
	// Each join condition: a group's column on the top-k side (DuckDB joins on the copy it carries
	// in the struct) against a column of the outer rows.
	auto outer_bindings = outer.GetColumnBindings();
	outer.ResolveOperatorTypes();
	auto outer_types = outer.types;
	for (auto &condition : join.conditions) {
		ExpressionType comparison;
		const Expression *left, *right;
		if (!JoinConditionParts(condition, comparison, left, right) ||
		    comparison != ExpressionType::COMPARE_NOT_DISTINCT_FROM) {
			return false;
		}
		auto topk_side = outer_side == 1 ? left : right;
		auto outer_side_expr = outer_side == 1 ? right : left;
		auto column = OuterColumn(DownToScan(*topk_side, *topk_slot, chain), get, remap.table_outputs);
		if (!column.IsValid() || !group_columns.count(column.GetIndex()) || remap.outer.count(column.GetIndex()) ||
		    outer_side_expr->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
			return false; // not a group, or a group twice
		}
		auto position = BindingPosition(outer, BindingOf(outer_side_expr->Cast<BoundColumnRefExpression>()));
		if (!position.IsValid()) {
			return false;
		}
		remap.outer[column.GetIndex()] = fused_outer_base + position.GetIndex();
	}
	remap.key = key.get();
	remap.distance_position = fused_outer_base + outer_bindings.size();

	// The query vector is one of the groups.
	DistanceOrder match;
	if (!MatchDistance(*key, direction, get.table_index, match) ||
	    match.query->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		return false;
	}
	idx_t old_query = BindingOf(match.query->Cast<BoundColumnRefExpression>()).column_index;
	if (!remap.outer.count(old_query)) {
		return false;
	}
	auto query_position = remap.outer[old_query] - fused_outer_base;
	auto distance = DistanceOverRow(*key, get.table_index, remap.table_outputs, old_query);
	if (!distance) {
		return false;
	}

	for (idx_t i = 0; i < remap.table_outputs && !get.projection_ids.empty(); i++) {
		auto &column = ids[get.projection_ids[i]];
		if (&column - ids.data() > 0 && !column.IsVirtualColumn() &&
		    column.GetPrimaryIndex() >= old_bind.passthrough_base) {
			return false;
		}
	}
	for (idx_t i = 1; i < ids.size(); i++) {
		bool passed = !ids[i].IsVirtualColumn() && ids[i].GetPrimaryIndex() >= old_bind.passthrough_base;
		bool before = !ids[i - 1].IsVirtualColumn() && ids[i - 1].GetPrimaryIndex() >= old_bind.passthrough_base;
		if (before && !passed) {
			return false; // a table column after the outer ones: the layout UseInOutScan does not make
		}
	}

	// The join's columns over the fused scan.
	auto join_bindings = join.GetColumnBindings();
	join.ResolveOperatorTypes();
	vector<unique_ptr<Expression>> columns;
	for (idx_t i = 0; i < join_bindings.size(); i++) {
		auto position = BindingPosition(outer, join_bindings[i]);
		if (position.IsValid()) {
			columns.push_back(make_uniq<BoundColumnRefExpression>(
			    join.types[i],
			    ColumnBinding(get.table_index, ProjectionIndex(fused_outer_base + position.GetIndex()))));
			continue;
		}
		BoundColumnRefExpression ref(join.types[i], join_bindings[i]);
		auto down = DownToScan(ref, *topk_slot, chain);
		auto column = down ? remap.Apply(*down) : nullptr;
		if (!column) {
			return false; // a column of the top-k side the fused scan cannot compute
		}
		columns.push_back(std::move(column));
	}

	// Rewrite: the in-out scan reads the outer rows themselves and ranks exactly.
	auto bind = unique_ptr_cast<FunctionData, HNSWScanBindData>(old_bind.Copy());
	vector<bool> read(remap.table_outputs, false);
	for (auto &column : columns) {
		ExpressionIterator::EnumerateExpression(column, [&](unique_ptr<Expression> &child) {
			if (child->GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF) {
				idx_t position = BindingOf(child->Cast<BoundColumnRefExpression>()).column_index;
				if (position < read.size()) {
					read[position] = true;
				}
			}
		});
	}
	for (idx_t i = 0; i < read.size(); i++) {
		if (!read[i]) {
			bind->unread_outputs.push_back(i); // only the distance reads it: not copied to the output
		}
	}
	bind->distance = std::move(distance);
	bind->descending = direction == OrderType::DESCENDING;
	bind->nulls_last = nulls_last;
	bind->query_column = 0;
	bind->distance_column = bind->passthrough_base + outer_bindings.size();
	auto scan = std::move(*chain.get_slot);
	// The old outer columns were appended last (UseInOutScan): drop them.
	auto &mutable_ids = get.GetMutableColumnIds();
	idx_t kept_ids = 0;
	while (kept_ids < mutable_ids.size() && (mutable_ids[kept_ids].IsVirtualColumn() ||
	                                         mutable_ids[kept_ids].GetPrimaryIndex() < bind->passthrough_base)) {
		kept_ids++;
	}
	mutable_ids.resize(kept_ids);
	if (!get.projection_ids.empty()) {
		get.projection_ids.resize(remap.table_outputs);
	}
	get.returned_types.resize(bind->passthrough_base);
	get.names.resize(bind->passthrough_base);
	vector<LogicalType> fused_types = outer_types;
	fused_types.push_back(ReturnType(*bind->distance));
	for (idx_t i = 0; i < fused_types.size(); i++) {
		get.returned_types.push_back(fused_types[i]);
		get.names.push_back(Identifier(i < outer_types.size() ? "hnsw_outer_" + to_string(i) : "hnsw_distance"));
		mutable_ids.emplace_back(bind->passthrough_base + i);
		if (!get.projection_ids.empty()) {
			get.projection_ids.emplace_back(mutable_ids.size() - 1);
		}
	}
	vector<unique_ptr<Expression>> input_columns;
	input_columns.push_back(
	    make_uniq<BoundColumnRefExpression>(outer_types[query_position], outer_bindings[query_position]));
	for (idx_t i = 0; i < outer_bindings.size(); i++) {
		input_columns.push_back(make_uniq<BoundColumnRefExpression>(outer_types[i], outer_bindings[i]));
	}
	auto input = make_uniq<LogicalProjection>(binder.GenerateTableIndex(), std::move(input_columns));
	input->children.push_back(std::move(join.children[outer_side]));
	input->ResolveOperatorTypes();
	get.input_table_types.clear();
	get.input_table_types.push_back(input->types[0]);
	get.children.clear();
	get.children.push_back(std::move(input));
	get.bind_data = std::move(bind);
	get.ResolveOperatorTypes();

	auto projection = make_uniq<LogicalProjection>(binder.GenerateTableIndex(), std::move(columns));
	projection->children.push_back(std::move(scan));
	projection->ResolveOperatorTypes();
	FusedJoin result;
	result.old_bindings = join_bindings;
	result.new_index = projection->table_index;
	result.projection = projection.get();
	fused.push_back(std::move(result));
	join_slot = std::move(projection);
	return true;
}

void RebindFusedJoins(LogicalOperator &op, const vector<FusedJoin> &fused) {
	for (auto &join : fused) {
		if (&op == join.projection) {
			return; // its own input still reads the outer rows' bindings
		}
	}
	LogicalOperatorVisitor::EnumerateExpressions(op, [&](unique_ptr<Expression> *expression) {
		ExpressionIterator::EnumerateExpression(*expression, [&](unique_ptr<Expression> &child) {
			if (child->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
				return;
			}
			auto &ref = child->Cast<BoundColumnRefExpression>();
			for (auto &join : fused) {
				for (idx_t i = 0; i < join.old_bindings.size(); i++) {
					if (BindingOf(ref) == join.old_bindings[i]) {
						child = make_uniq<BoundColumnRefExpression>(ReturnType(*child),
						                                            ColumnBinding(join.new_index, ProjectionIndex(i)));
						return;
					}
				}
			}
		});
	});
	for (auto &child : op.children) {
		RebindFusedJoins(*child, fused);
	}
}

} // namespace hnsw
} // namespace duckdb
