// CREATE INDEX ... USING HNSW: option binding, the parallel build (every DuckDB thread inserts
// into one shared thread-safe graph), and registration of the index type and its setting.
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"
#include "index/hnsw_index.hpp"
#include "hnsw_vectors.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/execution/index/index_type.hpp"
#include "duckdb/execution/index/index_type_set.hpp"
#include "duckdb/main/attached_database.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/parser/parsed_data/create_index_info.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/storage_manager.hpp"
#include "duckdb/storage/table_io_manager.hpp"
#include "duckdb/storage/table/data_table_info.hpp"
#include "duckdb/storage/table/scan_state.hpp"
#include "duckdb/transaction/duck_transaction.hpp"

namespace duckdb {
namespace hnsw {

static constexpr const char *OPTION_LIST = "metric, M, M0, ef_construction, ef_search, quantization, overfetch";

//! Reads an integer option; anything but an integer literal is an error naming the option.
static int64_t IntegerOption(const string &key, const Value &value) {
	if (value.IsNull() || !value.type().IsIntegral()) {
		throw BinderException("HNSW index option '%s' must be an integer, not %s %s", key, value.type().ToString(),
		                      value.ToSQLString());
	}
	auto big = value.GetValue<hugeint_t>();
	if (big > hugeint_t(NumericLimits<int64_t>::Maximum()) || big < hugeint_t(NumericLimits<int64_t>::Minimum())) {
		return NumericLimits<int64_t>::Maximum();
	}
	return value.GetValue<int64_t>();
}

//! Parses WITH (...) into checked parameters; `dim` comes from the column type.
static HNSWOptions ParseOptions(const case_insensitive_map_t<Value> &with, int64_t dim) {
	HNSWOptions out;
	out.params = hnsw_rs_default_params();
	out.params.dim = dim;
	out.metric_name = "l2sq";
	for (auto &entry : with) {
		auto key = StringUtil::Lower(entry.first);
		auto &value = entry.second;
		if (key == "metric") {
			if (value.IsNull() || value.type().id() != LogicalTypeId::VARCHAR) {
				throw BinderException("HNSW index option 'metric' must be a string ('l2sq', 'cosine' or 'ip'), not "
				                      "%s %s",
				                      value.type().ToString(), value.ToSQLString());
			}
			auto name = StringUtil::Lower(value.GetValue<string>());
			CoreStatus status;
			auto code = hnsw_rs_metric_code(name.c_str(), status.Out());
			status.Check("HNSW index option 'metric'");
			if (code == 0) {
				throw BinderException("HNSW index option 'metric' must be 'l2sq', 'cosine' or 'ip', not '%s'",
				                      value.GetValue<string>());
			}
			out.params.metric = code;
			out.metric_name = name;
		} else if (key == "m") {
			out.params.m = IntegerOption(entry.first, value);
		} else if (key == "m0") {
			out.params.m0 = IntegerOption(entry.first, value);
			if (out.params.m0 == 0) {
				throw BinderException("M0 must be at least M, not 0");
			}
		} else if (key == "ef_construction") {
			out.params.ef_construction = IntegerOption(entry.first, value);
		} else if (key == "ef_search") {
			out.params.ef_search = IntegerOption(entry.first, value);
		} else if (key == "quantization") {
			if (value.IsNull() || value.type().id() != LogicalTypeId::VARCHAR) {
				throw BinderException("HNSW index option 'quantization' must be a string ('f32', 'int8' or 'bit'), "
				                      "not %s %s",
				                      value.type().ToString(), value.ToSQLString());
			}
			auto name = value.GetValue<string>();
			CoreStatus status;
			auto code = hnsw_rs_quantization_code(name.c_str(), status.Out());
			if (status.status.code != HNSW_OK) {
				throw BinderException("HNSW index option %s", status.status.message);
			}
			out.params.quantization = code;
		} else if (key == "overfetch") {
			out.params.overfetch = IntegerOption(entry.first, value);
			if (out.params.overfetch == 0) {
				throw BinderException("HNSW index option 'overfetch' must be between 1 and %llu, not 0",
				                      idx_t(HNSW_OVERFETCH_MAX));
			}
		} else {
			throw BinderException("HNSW index option '%s' is unknown; the options are %s", entry.first, OPTION_LIST);
		}
	}
	CoreStatus status;
	if (!hnsw_rs_params_check(&out.params, status.Out()) && status.status.code == HNSW_INVALID_INPUT) {
		throw BinderException("HNSW index: %s", status.status.message);
	}
	status.Check("HNSW index options");
	return out;
}

//! The key column's dimension; throws unless the index is on exactly one FLOAT[n] column.
static int64_t CheckKey(const CreateIndexInfo &info, const vector<unique_ptr<Expression>> &expressions) {
	if (info.constraint_type != IndexConstraintType::NONE) {
		throw BinderException("HNSW indexes cannot be UNIQUE or PRIMARY KEY");
	}
	if (expressions.size() != 1) {
		throw BinderException("HNSW indexes cover exactly one FLOAT[n] column, not %llu", expressions.size());
	}
	auto &key = *expressions[0];
	if (key.GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		throw BinderException("HNSW index key must be a plain FLOAT[n] column, not the expression %s", key.ToString());
	}
	auto &type = ReturnType(key);
	if (type.id() != LogicalTypeId::ARRAY || ArrayType::GetChildType(type).id() != LogicalTypeId::FLOAT) {
		throw BinderException("HNSW index column must be FLOAT[n], not %s", type.ToString());
	}
	return NumericCast<int64_t>(ArrayType::GetSize(type));
}

class HNSWBuildBindData : public IndexBuildBindData {
public:
	HNSWOptions options;
};

static unique_ptr<IndexBuildBindData> HNSWBuildBind(IndexBuildBindInput &input) {
	auto dim = CheckKey(input.info, input.expressions);
	auto bind = make_uniq<HNSWBuildBindData>();
	bind->options = ParseOptions(input.info.options, dim);
	return std::move(bind);
}

class HNSWBuildGlobalState : public IndexBuildGlobalState {
public:
	unique_ptr<HNSWIndex> index;
	//! DuckDB threads inside a sink call right now: the others' cores are free for this one.
	atomic<idx_t> active_sinks{0};
	//! Rows linked before the scan (see LinkUpperLayersFirst); the sinks skip them.
	unordered_set<row_t> linked_first;
};

//! Links the rows whose nodes reach the upper layers (about one in M, spread over the whole
//! table) before the scan delivers the rest in table order. A table filled cluster by cluster
//! would otherwise leave its early clusters linked only among themselves: on 60 tight clusters
//! stored in order, recall@10 stalled near 0.87 whatever the ef.
static void LinkUpperLayersFirst(ClientContext &context, DuckTableEntry &table, HNSWIndex &index,
                                 unordered_set<row_t> &linked) {
	auto &storage = table.GetStorage();
	auto upper = index.Graph().UpperLabels(0, storage.GetTotalRows());
	if (upper.empty()) {
		return;
	}
	vector<StorageIndex> columns{StorageIndex(index.GetColumnIds()[0]), StorageIndex(COLUMN_IDENTIFIER_ROW_ID)};
	DataChunk chunk;
	chunk.Initialize(Allocator::DefaultAllocator(), {index.logical_types[0], LogicalType::ROW_TYPE});
	ColumnFetchState fetch_state;
	auto &transaction = DuckTransaction::Get(context, table.catalog);
	HNSWIndex::KeyBatch batch;
	for (idx_t offset = 0; offset < upper.size(); offset += STANDARD_VECTOR_SIZE) {
		auto count = MinValue<idx_t>(STANDARD_VECTOR_SIZE, upper.size() - offset);
		auto row_ids = RowIdVector(upper.data() + offset, count);
		chunk.Reset();
		// Rows this transaction cannot see are left out by Fetch, as the scan leaves them out.
		storage.Fetch(transaction, chunk, columns, row_ids, count, fetch_state);
		index.CollectKeys(chunk.data[0], chunk.data[1], chunk.size(), nullptr, batch);
	}
	index.InsertBatch(batch, index.SchedulerThreads(), false);
	linked.insert(batch.labels.begin(), batch.labels.end());
}

static unique_ptr<IndexBuildGlobalState> HNSWBuildGlobalInit(IndexBuildInitGlobalStateInput &input) {
	auto &bind = input.bind_data->Cast<HNSWBuildBindData>();
	auto &storage = input.table.GetStorage();
	auto state = make_uniq<HNSWBuildGlobalState>();
	state->index = make_uniq<HNSWIndex>(IndexNameOf(input.info), input.info.constraint_type, input.storage_ids,
	                                    TableIOManager::Get(storage), input.expressions, storage.db, bind.options);
	state->index->AttachTable(storage);
	// Fail before the build, not after minutes of it, if memory_limit cannot hold the graph (each
	// batch still reserves its memory as it is inserted). In a database file the commit also
	// writes the graph's image, about as large, into the WAL from DuckDB's buffers.
	auto rows = storage.GetTotalRows();
	auto graph_bytes = rows * BytesPerRow(bind.options.params);
	auto in_memory = storage.GetDataTableInfo()->IsTemporary() || storage.db.GetStorageManager().InMemory();
	IndexMemory::CheckRoom(input.context, in_memory ? graph_bytes : 2 * graph_bytes, state->index->ErrorContext(),
	                       in_memory
	                           ? StringUtil::Format("building it for %llu rows", rows)
	                           : StringUtil::Format("building it for %llu rows (and its image in the WAL)", rows));
	LinkUpperLayersFirst(input.context, input.table, *state->index, state->linked_first);
	return std::move(state);
}

class HNSWBuildLocalState : public IndexBuildLocalState {};

static unique_ptr<IndexBuildLocalState> HNSWBuildLocalInit(IndexBuildInitLocalStateInput &input) {
	return make_uniq<HNSWBuildLocalState>();
}

static void HNSWBuildSink(IndexBuildSinkInput &input, DataChunk &key_chunk, DataChunk &row_chunk) {
	// The graph is thread-safe: each DuckDB thread inserts its chunks directly. A small table is
	// scanned by one thread only (one row group), so a sink also uses the cores no other sink is
	// using: inserting as the scan goes keeps the progress bar honest, and the build parallel.
	auto &state = input.global_state.Cast<HNSWBuildGlobalState>();
	auto active = ++state.active_sinks;
	auto total = state.index->SchedulerThreads();
	auto threads = total > active ? total - active + 1 : 1;
	auto error = state.index->InsertKeys(key_chunk.data[0], row_chunk.data[0], key_chunk.size(), threads, false,
	                                     &state.linked_first);
	--state.active_sinks;
	if (error.HasError()) {
		error.Throw();
	}
}

static void HNSWBuildCombine(IndexBuildCombineInput &input) {
	// Nothing to merge: all threads built the same graph.
}

static unique_ptr<BoundIndex> HNSWBuildFinalize(IndexBuildFinalizeInput &input) {
	auto &state = input.global_state.Cast<HNSWBuildGlobalState>();
	state.index->Relink();
	return std::move(state.index);
}

//! Binds an index found in a database file (or replayed from the WAL); its pages are read on
//! first use. It must not throw: a throwing create_instance leaves DuckDB spinning on later
//! writes to the table. Anything unreadable becomes an index that says how to rebuild it.
static unique_ptr<BoundIndex> HNSWCreateInstance(CreateIndexInput &input) {
	HNSWOptions options;
	options.params = hnsw_rs_default_params();
	options.metric_name = "unknown";
	try {
		if (input.unbound_expressions.size() != 1) {
			throw InvalidInputException("expected one key column, not %llu", input.unbound_expressions.size());
		}
		auto &type = ReturnType(*input.unbound_expressions[0]);
		if (type.id() != LogicalTypeId::ARRAY || ArrayType::GetChildType(type).id() != LogicalTypeId::FLOAT) {
			throw InvalidInputException("expected a FLOAT[n] key, not %s", type.ToString());
		}
		// The catalog's WITH options, completed from the copy stored with the index (DuckDB 1.5's
		// catalog keeps none across a reopen).
		auto with = input.options;
		for (auto &stored : input.storage_info.options) {
			if (StringUtil::StartsWith(stored.first, STORAGE_WITH_PREFIX)) {
				with.emplace(stored.first.substr(strlen(STORAGE_WITH_PREFIX)), stored.second);
			}
		}
		options = ParseOptions(with, NumericCast<int64_t>(ArrayType::GetSize(type)));
		return HNSWIndex::FromStorage(input, options);
	} catch (std::exception &ex) {
		ErrorData error(ex);
		return make_uniq<HNSWIndex>(input.name, input.constraint_type, input.column_ids, input.table_io_manager,
		                            input.unbound_expressions, input.db, options,
		                            "its definition cannot be read (" + error.RawMessage() + ")");
	}
}

void CheckEfSearch(int64_t ef, const string &context) {
	auto params = hnsw_rs_default_params();
	params.dim = 1;
	params.ef_search = ef;
	CoreStatus status;
	hnsw_rs_params_check(&params, status.Out());
	status.Check(context);
}

//! Validates SET hnsw_ef_search.
static void SetEfSearch(ClientContext &context, SetScope scope, Value &parameter) {
	if (!parameter.IsNull()) {
		CheckEfSearch(parameter.GetValue<int64_t>(), "hnsw_ef_search");
	}
}

//! Validates SET hnsw_overfetch.
static void SetOverfetch(ClientContext &context, SetScope scope, Value &parameter) {
	if (parameter.IsNull()) {
		return;
	}
	auto overfetch = parameter.GetValue<int64_t>();
	if (overfetch < 1 || overfetch > int64_t(HNSW_OVERFETCH_MAX)) {
		throw InvalidInputException("hnsw_overfetch must be between 1 and %llu, not %lld", idx_t(HNSW_OVERFETCH_MAX),
		                            overfetch);
	}
}

void RegisterIndexType(ExtensionLoader &loader) {
	IndexType type;
	type.name = HNSWIndex::TYPE_NAME;
	type.build_bind = HNSWBuildBind;
	type.build_global_init = HNSWBuildGlobalInit;
	type.build_local_init = HNSWBuildLocalInit;
	type.build_sink = HNSWBuildSink;
	type.build_combine = HNSWBuildCombine;
	type.build_finalize = HNSWBuildFinalize;
	type.create_instance = HNSWCreateInstance;
	auto &config = DBConfig::GetConfig(loader.GetDatabaseInstance());
	config.GetIndexTypes().RegisterIndexType(type);
	// vss scripts start with this; here persistence needs no switch, so the setting does nothing.
	config.AddExtensionOption("hnsw_enable_experimental_persistence",
	                          "Accepted for compatibility with vss scripts; has no effect", LogicalType::BOOLEAN,
	                          Value::BOOLEAN(false));
	config.AddExtensionOption("hnsw_ef_search",
	                          "Candidate list size of HNSW searches; overrides the index's ef_search (NULL: use it)",
	                          LogicalType::BIGINT, Value(), SetEfSearch);
	config.AddExtensionOption("hnsw_overfetch",
	                          "Candidates per wanted row a quantized HNSW index hands to the exact re-rank; "
	                          "overrides the index's overfetch (NULL: use it). No effect on f32 indexes",
	                          LogicalType::BIGINT, Value(), SetOverfetch);
}

} // namespace hnsw
} // namespace duckdb
