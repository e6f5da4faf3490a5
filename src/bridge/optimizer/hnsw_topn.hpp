// Shared pieces of the top-k rewrite: recognising a distance ordering over a plain scan of an
// indexed column (hnsw_topn_match.cpp), the rewrite itself (hnsw_optimize_topn.cpp) and the undoing
// of DuckDB's late materialization around it (hnsw_late_materialization.cpp).
#pragma once

#include "scan/hnsw_index_scan.hpp"

#include "duckdb.hpp"
#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/expression/bound_function_expression.hpp"
#include "duckdb/planner/logical_operator.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/planner/operator/logical_aggregate.hpp"
#include "duckdb/planner/operator/logical_filter.hpp"
#include "duckdb/planner/operator/logical_projection.hpp"
#include "duckdb/planner/operator/logical_top_n.hpp"

namespace duckdb {
class Binder;

namespace hnsw {

//! LIMIT + OFFSET above which the exact plan is kept (a graph search would visit most rows).
constexpr idx_t MAX_K = 5000;

//! What an ORDER BY expression asks for, once recognised.
struct DistanceOrder {
	string metric;
	//! The scanned vector column, and the other argument (a constant or a column of another input).
	const BoundColumnRefExpression *column = nullptr;
	const Expression *query = nullptr;
};

//! Recognises the distance forms and their direction; false means "not an HNSW ordering".
bool MatchDistance(const Expression &expr, OrderType direction, TableIndex scan, DistanceOrder &out);
//! A plain full scan of a DuckDB table (with pushed-down filters only if `allow_filters`), or null.
optional_ptr<TableCatalogEntry> PlainTableScan(LogicalOperator &op, bool allow_filters = false);
//! Name of a bound HNSW index on the given storage column with the given metric, or "". Throws
//! (saying how to rebuild it) if that index's stored data cannot be read.
string FindMatchingIndex(ClientContext &context, TableCatalogEntry &table, const StorageIndex &column,
                         const string &metric, idx_t dims);
//! Follows column references down through projections to the expression that computes them.
const Expression &Resolve(const Expression &expr, LogicalOperator &op);
//! Copies `expr` (over the output of `op`) with column references replaced by the expressions
//! that compute them, down through projections and filters.
unique_ptr<Expression> InlineProjections(const Expression &expr, LogicalOperator &op);
//! Moves a WHERE clause (the scan's pushed-down filters and the FILTER operators above it) into
//! the scan's bind data, bounds on the ORDER BY `key` as the search's distance bound (a FILTER put
//! above the scan in `get_slot` re-checks those pushed into it); false (plan and bind data
//! unusable) if some conjunct cannot be evaluated there.
bool TakePredicate(unique_ptr<LogicalOperator> &get_slot, const vector<reference<LogicalFilter>> &filters,
                   const Expression &key, OrderType direction, bool bounds, HNSWScanBindData &bind);
//! Position of a binding among an operator's output bindings, or invalid.
optional_idx BindingPosition(LogicalOperator &op, const ColumnBinding &binding);
//! Turns CROSS_PRODUCT(scan, outer rows) in `cross_slot` into an in-out HNSW scan with one search
//! per outer row (its vector at `query_position`); `above`, the projection that read the cross
//! product, is re-pointed at the outer columns the scan passes through.
void UseInOutScan(unique_ptr<LogicalOperator> &cross_slot, HNSWScanBindData &bind, LogicalProjection &above,
                  Binder &binder, idx_t query_position);
//! Recognises min_by / arg_min / max_by / arg_max (and DuckDB's *_nulls_last forms) with an
//! optional constant k; returns the ordering key resolved over the scans below `input`.
bool MatchTopKAggregate(const Expression &expr, LogicalOperator &input, unique_ptr<Expression> &key,
                        OrderType &direction, idx_t &k);
//! A LATERAL top-k join fused into one scan (hnsw_optimize_lateral_topk.cpp): the join's output
//! bindings, which operators above still read, and the projection that now produces them.
struct FusedJoin {
	vector<ColumnBinding> old_bindings;
	TableIndex new_index;
	LogicalOperator *projection = nullptr;
};
//! Replaces the decorrelated LATERAL top-k join in `join_slot` (its aggregate already rewritten to
//! an in-out index scan) by one in-out scan that ranks exactly; false (plan unchanged) otherwise.
bool TryFuseLateralTopK(unique_ptr<LogicalOperator> &join_slot, Binder &binder, vector<FusedJoin> &fused);
//! Points every reference to a fused join's old bindings, in the plan above it, at its projection.
void RebindFusedJoins(LogicalOperator &op, const vector<FusedJoin> &fused);
//! Top-k per group by an aggregate (min_by / arg_min / max_by / arg_max with k, which is also
//! how DuckDB plans a LATERAL top-k join): the scan under it becomes an index scan.
void TryRewriteTopKAggregate(ClientContext &context, Binder &binder, LogicalAggregate &aggregate);
//! The search a matched distance asks for, as the scan's bind data: the indexed column of `get`,
//! the query (a constant's floats, or with `outer` the position of a FLOAT[n] column among its
//! outputs, set in `query_column`) and the matching index; null (plan unchanged) if one is missing.
unique_ptr<HNSWScanBindData> BindSearch(ClientContext &context, TableCatalogEntry &table, LogicalGet &get,
                                        const DistanceOrder &match, optional_ptr<LogicalOperator> outer, idx_t k,
                                        optional_idx &query_column);
//! Replaces a plain table scan's function with HNSW_INDEX_SCAN.
void UseIndexScan(LogicalGet &get, const HNSWScanBindData &bind);

//! A rewritten TOP_N, as its parents need it.
struct TopNRewrite {
	unique_ptr<HNSWScanBindData> bind;
	LogicalTopN *top_n = nullptr;
	//! The distance expression over the scan's columns, and the scan it reads.
	unique_ptr<Expression> resolved_distance;
	const Expression *distance = nullptr;
	TableIndex scan_table_index;
	//! The TOP_N replaced a late-materialization SEMI join: the ORDER BY that late
	//! materialization put above it only re-sorts the TOP_N's already sorted output.
	bool replaced_join = false;
};

//! Replaces SEMI(left scan of t, right: rewritten top-k of t) by TOP_N over the left scan, which
//! then reads the index's candidates too. False (plan unchanged) if the shape does not allow it.
bool CollapseSemiJoin(unique_ptr<LogicalOperator> &join_op, TopNRewrite &right);
//! Drops the ORDER BY above a TOP_N that replaced a SEMI join. False if it is not redundant.
bool DropRedundantOrder(unique_ptr<LogicalOperator> &order_op, const TopNRewrite &below);
//! Before DuckDB's optimizers: keeps a scan the rewrite will replace out of late materialization.
void KeepScanForIndex(ClientContext &context, LogicalOperator &op);

} // namespace hnsw
} // namespace duckdb
