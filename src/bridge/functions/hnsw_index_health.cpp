// hnsw_index_health(index): one row on the state of an HNSW graph (per-layer out-degrees, rows no
// search can reach, deleted and retired shares, bytes by part) and what to do about it.
#include "hnsw_bridge.hpp"
#include "catalog/hnsw_index_catalog.hpp"

#include "duckdb/catalog/catalog_entry/duck_index_entry.hpp"
#include "duckdb/function/table_function.hpp"
#include "duckdb/main/extension/extension_loader.hpp"

namespace duckdb {
namespace hnsw {

struct HealthBindData : public TableFunctionData {
	string index_name;
};

static LogicalType LayerType() {
	child_list_t<LogicalType> fields = {{"layer", LogicalType::BIGINT},      {"nodes", LogicalType::BIGINT},
	                                    {"degree_min", LogicalType::BIGINT}, {"degree_mean", LogicalType::DOUBLE},
	                                    {"degree_max", LogicalType::BIGINT}, {"capacity", LogicalType::BIGINT}};
	return LogicalType::STRUCT(std::move(fields));
}

static const vector<pair<const char *, LogicalType>> &HealthColumns() {
	static const vector<pair<const char *, LogicalType>> columns = {
	    {"index_name", LogicalType::VARCHAR},
	    {"table_name", LogicalType::VARCHAR},
	    {"live", LogicalType::BIGINT},
	    {"deleted", LogicalType::BIGINT},
	    {"retired", LogicalType::BIGINT},
	    {"copies", LogicalType::BIGINT},
	    {"free_slots", LogicalType::BIGINT},
	    {"deleted_share", LogicalType::DOUBLE},
	    {"retired_share", LogicalType::DOUBLE},
	    {"unreachable", LogicalType::BIGINT},
	    {"layers", LogicalType::LIST(LayerType())},
	    {"vector_bytes", LogicalType::BIGINT},
	    {"link_bytes", LogicalType::BIGINT},
	    {"label_bytes", LogicalType::BIGINT},
	    {"warning", LogicalType::VARCHAR},
	};
	return columns;
}

static unique_ptr<FunctionData> HealthBind(ClientContext &context, TableFunctionBindInput &input,
                                           vector<LogicalType> &return_types, vector<Identifier> &names) {
	if (input.inputs[0].IsNull()) {
		throw BinderException("hnsw_index_health: the index name is NULL");
	}
	auto bind = make_uniq<HealthBindData>();
	bind->index_name = input.inputs[0].GetValue<string>();
	FindHNSWIndex(context, bind->index_name); // unknown names fail at bind time
	for (auto &column : HealthColumns()) {
		names.emplace_back(column.first);
		return_types.push_back(column.second);
	}
	return std::move(bind);
}

//! What needs action, in the order to take it; NULL when nothing does.
static Value HealthWarning(const HnswHealth &health, const string &index_name) {
	vector<string> warnings;
	if (health.unreachable > 0) {
		warnings.push_back(StringUtil::Format("%llu live rows cannot be reached from the entry point, so no search "
		                                      "returns them: CHECKPOINT relinks them",
		                                      health.unreachable));
	}
	if (health.compaction_due) {
		warnings.push_back(StringUtil::Format("%llu deleted rows (%.1f%% of the live ones) are still walked by "
		                                      "searches: PRAGMA hnsw_compact_index('%s') reclaims them",
		                                      health.deleted, 100.0 * double(health.deleted) / double(health.live),
		                                      index_name));
	}
	if (health.rebuild_advised) {
		warnings.push_back(StringUtil::Format(
		    "%llu of %llu slots are free after compaction: DROP INDEX and CREATE "
		    "INDEX return their memory",
		    health.free_slots, health.free_slots + health.live + health.deleted + health.retired + health.copies));
	}
	if (warnings.empty()) {
		return Value(LogicalType::VARCHAR);
	}
	return Value(StringUtil::Join(warnings, "; "));
}

static Value Share(uint64_t part, uint64_t whole) {
	return Value::DOUBLE(whole == 0 ? 0.0 : double(part) / double(whole));
}

struct HealthState : public GlobalTableFunctionState {
	bool done = false;
};

static unique_ptr<GlobalTableFunctionState> HealthInit(ClientContext &context, TableFunctionInitInput &input) {
	return make_uniq<HealthState>();
}

static void HealthFunction(ClientContext &context, TableFunctionInput &input, DataChunk &output) {
	auto &bind = input.bind_data->Cast<HealthBindData>();
	auto &state = input.global_state->Cast<HealthState>();
	if (state.done) {
		SetChunkSize(output, 0);
		return;
	}
	state.done = true;
	auto ref = FindHNSWIndex(context, bind.index_name);
	auto handle = ReadHNSWIndex(ref);
	auto &index = *handle->operator->();
	auto index_name = NameText(ref.catalog_entry.name);
	vector<Value> row = {Value(index_name), Value(NameText(ref.catalog_entry.GetTableName()))};
	if (!index.IsUsable()) {
		// Nothing to measure: the warning says how to recover.
		for (idx_t col = row.size(); col + 1 < HealthColumns().size(); col++) {
			row.push_back(Value(HealthColumns()[col].second));
		}
		row.push_back(Value("the index cannot be used (" + index.UnusableReason() + "): DROP INDEX and CREATE INDEX"));
	} else {
		auto health = index.Graph().Health();
		auto nodes = health.live + health.deleted + health.retired + health.copies;
		vector<Value> layers;
		for (idx_t level = 0; level < health.layer_count; level++) {
			child_list_t<Value> layer = {{"layer", Value::BIGINT(NumericCast<int64_t>(level))},
			                             {"nodes", Value::BIGINT(NumericCast<int64_t>(health.layer_nodes[level]))},
			                             {"degree_min", Value::BIGINT(health.degree_min[level])},
			                             {"degree_mean", Value::DOUBLE(health.degree_mean[level])},
			                             {"degree_max", Value::BIGINT(health.degree_max[level])},
			                             {"capacity", Value::BIGINT(health.degree_capacity[level])}};
			layers.push_back(Value::STRUCT(std::move(layer)));
		}
		auto as_bigint = [](uint64_t v) { return Value::BIGINT(NumericCast<int64_t>(v)); };
		row.push_back(as_bigint(health.live));
		row.push_back(as_bigint(health.deleted));
		row.push_back(as_bigint(health.retired));
		row.push_back(as_bigint(health.copies));
		row.push_back(as_bigint(health.free_slots));
		row.push_back(Share(health.deleted, nodes));
		row.push_back(Share(health.retired, nodes));
		row.push_back(as_bigint(health.unreachable));
		row.push_back(Value::LIST(LayerType(), std::move(layers)));
		row.push_back(as_bigint(health.vector_bytes));
		row.push_back(as_bigint(health.link_bytes));
		row.push_back(as_bigint(health.label_bytes));
		row.push_back(HealthWarning(health, index_name));
	}
	for (idx_t col = 0; col < row.size(); col++) {
		output.data[col].SetValue(0, row[col]);
	}
	SetChunkSize(output, 1);
}

void RegisterIndexHealthFunction(ExtensionLoader &loader) {
	loader.RegisterFunction(
	    TableFunction("hnsw_index_health", {LogicalType::VARCHAR}, HealthFunction, HealthBind, HealthInit));
}

} // namespace hnsw
} // namespace duckdb
