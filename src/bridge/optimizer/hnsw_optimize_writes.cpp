// Before optimizing a write (INSERT, UPDATE, MERGE, DELETE), hand the written table's storage to
// its HNSW indexes: at commit they may ask DuckDB to start a new row group
// (hnsw_index_row_groups.cpp), and an index cannot find its table by itself. Their graphs are
// loaded now, so a graph memory_limit has no room for fails this statement, not its commit. And
// check the vectors an INSERT or UPDATE writes into an indexed column while the statement runs:
// DuckDB hands rows to the index only at commit, where a bad vector (NaN, wrong for the metric)
// or more rows than memory_limit leaves room for would fail the whole transaction at COMMIT.
#include "hnsw_bridge.hpp"
#include "catalog/hnsw_index_catalog.hpp"
#include "hnsw_vectors.hpp"
#include "index/hnsw_index_memory.hpp"
#include "rust/hnsw_rust_index.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/optimizer/optimizer_extension.hpp"
#include "duckdb/optimizer/optimizer.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/operator/logical_delete.hpp"
#include "duckdb/planner/operator/logical_insert.hpp"
#include "duckdb/planner/operator/logical_projection.hpp"
#include "duckdb/planner/operator/logical_merge_into.hpp"
#include "duckdb/planner/operator/logical_update.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/data_table_info.hpp"
#include "duckdb/storage/table/table_index_list.hpp"

namespace duckdb {
namespace hnsw {

//! The table a write operator changes, or null.
static optional_ptr<TableCatalogEntry> WrittenTable(LogicalOperator &op) {
	switch (op.type) {
	case LogicalOperatorType::LOGICAL_DELETE:
		return &op.Cast<LogicalDelete>().table; // loads the graph now: its commit must not fail
	case LogicalOperatorType::LOGICAL_INSERT:
		return &op.Cast<LogicalInsert>().table;
	case LogicalOperatorType::LOGICAL_UPDATE:
		return &op.Cast<LogicalUpdate>().table; // an update of an indexed column appends the new row
	case LogicalOperatorType::LOGICAL_MERGE_INTO:
		return &op.Cast<LogicalMergeInto>().table;
	default:
		return nullptr;
	}
}

//! One HNSW index's demand on the rows written to its table: the column and what it accepts.
struct VectorCheck {
	column_t column;
	HnswParams params;
	string index_name;
};

//! Gives each HNSW index of the table the table's storage (binding indexes a reopen left unbound);
//! returns the vector checks of the usable ones.
static vector<VectorCheck> AttachToIndexes(ClientContext &context, TableCatalogEntry &table) {
	vector<VectorCheck> checks;
	if (!table.IsDuckTable()) {
		return checks; // another catalog's table: not ours to manage
	}
	auto &storage = table.Cast<DuckTableEntry>().GetStorage();
	auto &info = *storage.GetDataTableInfo();
	bool has_hnsw = false; // checked first, to bind nothing for tables without HNSW indexes
	ForEachHNSWIndex(
	    info,
	    [&](const IndexEntryRef &) {
		    has_hnsw = true;
		    return false;
	    },
	    true);
	if (!has_hnsw) {
		return checks;
	}
	BindHNSWIndexes(context, info);
	ForEachHNSWIndex(info, [&](const IndexEntryRef &entry) {
		auto handle = entry->GetReadHandle<HNSWIndex>();
		handle->AttachTable(storage);
		auto &index = *handle.operator->();
		// An index that cannot be read is not maintained, so it refuses nothing (see InsertKeys).
		if (index.UnusableReason().empty() && index.GetColumnIds().size() == 1) {
			checks.push_back({index.GetColumnIds()[0], index.Options().params, NameText(index.name)});
		}
		return true;
	});
	return checks;
}

//! Rows one execution of a statement has written into an indexed column so far (executions of a
//! prepared statement share the function, and differ in their query number).
class WrittenRows {
public:
	//! Adds `rows` to the count of execution `query`; returns the count.
	idx_t Add(idx_t query_p, idx_t rows_p) {
		lock_guard<mutex> guard(lock);
		if (query != query_p) {
			query = query_p;
			rows = 0;
		}
		rows += rows_p;
		return rows;
	}

private:
	mutex lock;
	idx_t query = DConstants::INVALID_INDEX;
	idx_t rows = 0;
};

//! hnsw_check_vector(v): v, or an error naming the index and the problem if the index cannot take
//! it (a bad vector, or more rows than memory_limit leaves room for in the index). NULL passes
//! (rows without a vector are not indexed).
static ScalarFunction CheckFunction(const VectorCheck &check, const LogicalType &type) {
	auto context = StringUtil::Format("HNSW index \"%s\"", check.index_name);
	auto params = check.params;
	auto bytes_per_row = BytesPerRow(params);
	auto written = make_shared_ptr<WrittenRows>();
	ScalarFunction function(
	    "hnsw_check_vector", {type}, type,
	    [context, params, bytes_per_row, written](DataChunk &args, ExpressionState &state, Vector &result) {
		    auto count = args.size();
		    ArrayRows<float> rows(args.data[0], count, context, "indexed");
		    idx_t indexed = 0;
		    for (idx_t i = 0; i < count; i++) {
			    if (rows.IsNull(i)) {
				    continue;
			    }
			    CoreStatus status;
			    hnsw_rs_params_check_vector(&params, rows.Row(i), rows.size, status.Out());
			    status.Check(context + ", a written row");
			    indexed++;
		    }
		    // The rows reach the index at commit, which must not fail: refuse them now if the
		    // index could not grow by that much under memory_limit.
		    auto &client = state.GetContext();
		    auto total = written->Add(client.transaction.GetActiveQuery(), indexed);
		    IndexMemory::CheckRoom(client, total * bytes_per_row, context,
		                           StringUtil::Format("adding this statement's %llu rows", total));
		    result.Reference(args.data[0]);
		    if (args.AllConstant()) {
			    result.SetVectorType(VectorType::CONSTANT_VECTOR);
		    }
	    });
	function.SetFallible(); // it throws for bad rows: DuckDB must not evaluate it speculatively
	return function;
}

static bool IsFloatArray(const LogicalType &type) {
	return type.id() == LogicalTypeId::ARRAY && ArrayType::GetChildType(type).id() == LogicalTypeId::FLOAT;
}

//! Wraps the child's output columns at `positions` (one per check) in their check: inside the
//! child's projection when it is one, else in a projection added on top (an INSERT takes its
//! child's columns by position, so passing them through changes nothing else).
static void CheckInsertColumns(Optimizer &optimizer, LogicalInsert &insert, const vector<VectorCheck> &checks) {
	auto &child = insert.children[0];
	child->ResolveOperatorTypes();
	vector<pair<idx_t, const VectorCheck *>> targets;
	for (auto &check : checks) {
		auto position = check.column;
		if (!insert.column_index_map.empty()) {
			position = insert.column_index_map[PhysicalIndex(check.column)];
		}
		if (position < child->types.size() && IsFloatArray(child->types[position])) {
			targets.emplace_back(position, &check);
		}
	}
	if (targets.empty()) {
		return;
	}
	if (child->type != LogicalOperatorType::LOGICAL_PROJECTION) {
		vector<unique_ptr<Expression>> columns;
		auto bindings = child->GetColumnBindings();
		for (idx_t i = 0; i < bindings.size(); i++) {
			columns.push_back(make_uniq<BoundColumnRefExpression>(child->types[i], bindings[i]));
		}
		auto projection = make_uniq<LogicalProjection>(optimizer.binder.GenerateTableIndex(), std::move(columns));
		projection->children.push_back(std::move(child));
		child = std::move(projection);
	}
	for (auto &target : targets) {
		auto &expression = child->expressions[target.first];
		auto type = ReturnType(*expression);
		expression = CallFunction(CheckFunction(*target.second, type), std::move(expression));
	}
}

//! Wraps the new values an UPDATE computes for indexed columns in their check. They come from
//! the projection below the update (DEFAULT values are left alone).
static void CheckUpdateColumns(LogicalUpdate &update, const vector<VectorCheck> &checks) {
	auto &child = *update.children[0];
	if (child.type != LogicalOperatorType::LOGICAL_PROJECTION) {
		return; // not the plan DuckDB builds: the check at commit still applies
	}
	auto &projection = child.Cast<LogicalProjection>();
	for (idx_t i = 0; i < update.columns.size() && i < update.expressions.size(); i++) {
		for (auto &check : checks) {
			auto &value = *update.expressions[i];
			if (update.columns[i].index != check.column ||
			    value.GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
				continue;
			}
			auto &binding = BindingOf(value.Cast<BoundColumnRefExpression>());
			if (binding.table_index != projection.table_index) {
				continue;
			}
			auto &expression = projection.expressions[binding.column_index];
			auto type = ReturnType(*expression);
			if (IsFloatArray(type)) {
				expression = CallFunction(CheckFunction(check, type), std::move(expression));
			}
		}
	}
}

static void PrepareWrites(OptimizerExtensionInput &input, LogicalOperator &op) {
	for (auto &child : op.children) {
		PrepareWrites(input, *child);
	}
	auto table = WrittenTable(op);
	if (!table) {
		return;
	}
	auto checks = AttachToIndexes(input.context, *table);
	if (op.type != LogicalOperatorType::LOGICAL_INSERT && op.type != LogicalOperatorType::LOGICAL_UPDATE) {
		return; // MERGE INTO: its rows are checked at commit
	}
	if (checks.empty()) {
		return;
	}
	if (op.type == LogicalOperatorType::LOGICAL_INSERT) {
		CheckInsertColumns(input.optimizer, op.Cast<LogicalInsert>(), checks);
	} else {
		CheckUpdateColumns(op.Cast<LogicalUpdate>(), checks);
	}
}

static void PreOptimizeWrites(OptimizerExtensionInput &input, unique_ptr<LogicalOperator> &plan) {
	PrepareWrites(input, *plan);
}

void RegisterWriteOptimizer(ExtensionLoader &loader) {
	OptimizerExtension extension;
	extension.pre_optimize_function = PreOptimizeWrites;
	OptimizerExtension::Register(DBConfig::GetConfig(loader.GetDatabaseInstance()), extension);
}

} // namespace hnsw
} // namespace duckdb
