// hnsw_benchmark(index, (queries) [, k, ef]) and hnsw_tune(index, (queries) [, target_recall, k]):
// recall@k of an index against exact search over its rows, with the cost of single searches, per
// ef. hnsw_sample_queries(index [, n]) gives queries when the user has none: stored vectors moved
// toward a neighbour, so that a query is not its own answer.
#include "hnsw_bridge.hpp"
#include "catalog/hnsw_index_catalog.hpp"
#include "hnsw_vectors.hpp"
#include "scan/hnsw_table_vectors.hpp"

#include "duckdb/function/table_function.hpp"
#include "duckdb/main/extension/extension_loader.hpp"

#include <chrono>

namespace duckdb {
namespace hnsw {

//! Defaults and limits of the parameters.
static constexpr int64_t K_DEFAULT = 10;
static constexpr int64_t K_MAX = 10000;
static constexpr int64_t SAMPLE_DEFAULT = 1000;
static constexpr int64_t SAMPLE_MAX = 100000;
static constexpr int64_t EF_MAX = 100000;
static constexpr double TARGET_DEFAULT = 0.95;
static const vector<int64_t> EF_DEFAULT = {16, 32, 64, 128, 256};

enum class MeasureKind : uint8_t { BENCHMARK, TUNE };

struct MeasureBindData : public TableFunctionData {
	MeasureKind kind = MeasureKind::BENCHMARK;
	string function_name;
	string index_name;
	idx_t dim = 0;
	idx_t k = K_DEFAULT;
	vector<idx_t> efs;
	double target = TARGET_DEFAULT;
};

struct MeasureState : public GlobalTableFunctionState {
	//! One thread feeds the queries, so the final call sees them all.
	idx_t MaxThreads() const override {
		return 1;
	}
	vector<float> queries;
	idx_t rows_seen = 0;
	bool measured = false;
	vector<vector<Value>> rows;
	idx_t offset = 0;
};

static int64_t NamedInteger(const string &function, const string &name, const Value &value, int64_t min, int64_t max) {
	auto v = value.GetValue<int64_t>();
	if (v < min || v > max) {
		throw BinderException("%s: %s must be between %lld and %lld, not %lld", function, name, min, max, v);
	}
	return v;
}

static unique_ptr<FunctionData> MeasureBind(ClientContext &context, TableFunctionBindInput &input,
                                            vector<LogicalType> &return_types, vector<Identifier> &names,
                                            MeasureKind kind) {
	auto bind = make_uniq<MeasureBindData>();
	bind->kind = kind;
	bind->function_name = kind == MeasureKind::BENCHMARK ? "hnsw_benchmark" : "hnsw_tune";
	auto &fn = bind->function_name;
	if (input.inputs[0].IsNull()) {
		throw BinderException("%s: the index name is NULL", fn);
	}
	bind->index_name = input.inputs[0].GetValue<string>();
	vector<int64_t> efs = EF_DEFAULT;
	for (auto &named : input.named_parameters) {
		auto name = NameText(named.first);
		auto &value = named.second;
		if (value.IsNull()) {
			continue; // not given: the default
		}
		if (name == "k") {
			bind->k = NumericCast<idx_t>(NamedInteger(fn, name, value, 1, K_MAX));
		} else if (name == "ef") {
			efs.clear();
			for (auto &element : ListValue::GetChildren(value)) {
				if (element.IsNull()) {
					throw BinderException("%s: ef holds a NULL", fn);
				}
				efs.push_back(NamedInteger(fn, "each ef", element, 1, EF_MAX));
			}
			if (efs.empty()) {
				throw BinderException("%s: ef is an empty list; give at least one value, e.g. ef := [32, 64]", fn);
			}
		} else if (name == "target_recall") {
			bind->target = value.GetValue<double>();
			if (!(bind->target > 0 && bind->target <= 1)) {
				throw BinderException("%s: target_recall must be above 0 and at most 1, not %s", fn, value.ToString());
			}
		}
	}
	std::sort(efs.begin(), efs.end());
	efs.erase(std::unique(efs.begin(), efs.end()), efs.end());
	for (auto ef : efs) {
		if (NumericCast<idx_t>(ef) < bind->k) {
			throw BinderException("%s: ef %lld is below k %llu; each ef must be at least k", fn, ef, bind->k);
		}
		bind->efs.push_back(NumericCast<idx_t>(ef));
	}

	auto ref = FindHNSWIndex(context, bind->index_name);
	auto handle = ReadHNSWIndex(ref);
	bind->dim = (*handle)->Dimensions();
	{
		if (input.input_table_types.size() != 1) {
			throw BinderException("%s: the query subquery must return one column (the query vectors), not %llu", fn,
			                      input.input_table_types.size());
		}
		auto &type = input.input_table_types[0];
		auto ok = type.id() == LogicalTypeId::LIST ||
		          (type.id() == LogicalTypeId::ARRAY && ArrayType::GetSize(type) == bind->dim);
		if (!ok) {
			throw BinderException("%s: index \"%s\" expects query vectors of type FLOAT[%llu], not %s", fn,
			                      bind->index_name, bind->dim, type.ToString());
		}
	}

	vector<pair<const char *, LogicalType>> columns = {
	    {"ef", LogicalType::BIGINT},      {"recall", LogicalType::DOUBLE}, {"distances_per_query", LogicalType::DOUBLE},
	    {"p50_ms", LogicalType::DOUBLE},  {"p99_ms", LogicalType::DOUBLE}, {"qps", LogicalType::DOUBLE},
	    {"queries", LogicalType::BIGINT}, {"k", LogicalType::BIGINT}};
	columns.emplace_back(kind == MeasureKind::BENCHMARK ? make_pair("truth_ms", LogicalType(LogicalType::DOUBLE))
	                                                    : make_pair("chosen", LogicalType(LogicalType::BOOLEAN)));
	for (auto &column : columns) {
		names.emplace_back(column.first);
		return_types.push_back(column.second);
	}
	return std::move(bind);
}

static unique_ptr<FunctionData> BenchmarkBind(ClientContext &context, TableFunctionBindInput &input,
                                              vector<LogicalType> &return_types, vector<Identifier> &names) {
	return MeasureBind(context, input, return_types, names, MeasureKind::BENCHMARK);
}

static unique_ptr<FunctionData> TuneBind(ClientContext &context, TableFunctionBindInput &input,
                                         vector<LogicalType> &return_types, vector<Identifier> &names) {
	return MeasureBind(context, input, return_types, names, MeasureKind::TUNE);
}

static unique_ptr<GlobalTableFunctionState> MeasureInit(ClientContext &context, TableFunctionInitInput &input) {
	return make_uniq<MeasureState>();
}

//! Appends the chunk's query vectors to the state; NULLs and wrong lengths are errors naming the row.
static void CollectQueries(const MeasureBindData &bind, MeasureState &state, DataChunk &input) {
	auto &column = input.data[0];
	auto count = input.size();
	auto &type = column.GetType();
	if (type.id() == LogicalTypeId::ARRAY && ArrayType::GetChildType(type).id() == LogicalTypeId::FLOAT) {
		ArrayRows<float> rows(column, count, bind.function_name, "query");
		for (idx_t i = 0; i < count; i++, state.rows_seen++) {
			if (rows.IsNull(i)) {
				throw InvalidInputException("%s: query row %llu is NULL", bind.function_name, state.rows_seen + 1);
			}
			auto row = rows.Row(i);
			state.queries.insert(state.queries.end(), row, row + bind.dim);
		}
		return;
	}
	// Other element types and lists: value by value (a benchmark's query set is small).
	vector<float> floats;
	for (idx_t i = 0; i < count; i++, state.rows_seen++) {
		auto value = column.GetValue(i);
		idx_t null_element = 0;
		if (value.IsNull()) {
			throw InvalidInputException("%s: query row %llu is NULL", bind.function_name, state.rows_seen + 1);
		}
		if (!ValueToFloats(value, floats, &null_element)) {
			throw InvalidInputException("%s: query row %llu has a NULL at element %llu", bind.function_name,
			                            state.rows_seen + 1, null_element);
		}
		if (floats.size() != bind.dim) {
			throw InvalidInputException("%s: query row %llu has %llu dimensions; the index has %llu",
			                            bind.function_name, state.rows_seen + 1, floats.size(), bind.dim);
		}
		state.queries.insert(state.queries.end(), floats.begin(), floats.end());
	}
}

static vector<Value> PointRow(const HnswBenchPoint &point, idx_t queries, idx_t k, Value last) {
	return {Value::BIGINT(NumericCast<int64_t>(point.ef)),
	        Value::DOUBLE(point.recall),
	        Value::DOUBLE(point.distances_per_query),
	        Value::DOUBLE(point.p50_ms),
	        Value::DOUBLE(point.p99_ms),
	        Value::DOUBLE(point.qps),
	        Value::BIGINT(NumericCast<int64_t>(queries)),
	        Value::BIGINT(NumericCast<int64_t>(k)),
	        std::move(last)};
}

//! A quantized index's answers are checked against the table's own vectors (its codes are only
//! estimates): a copy of the indexed column, read with no index handle held. Null for float32.
static unique_ptr<RustTableVectors> TableVectorsFor(ClientContext &context, const HNSWIndexRef &ref) {
	column_t column;
	LogicalType type;
	idx_t dim;
	{
		auto handle = ReadHNSWIndex(ref);
		auto &index = *handle->operator->();
		if (index.Graph().Params().quantization == 0) {
			return nullptr;
		}
		column = index.GetColumnIds()[0];
		type = index.logical_types[0];
		dim = index.Dimensions();
	}
	vector<uint64_t> labels;
	vector<float> vectors;
	ReadTableVectors(context, IndexedTable(context, ref), column, type, dim, labels, vectors);
	return make_uniq<RustTableVectors>(dim, labels, vectors);
}

//! Runs the measurement once all queries are in: ground truth once, then each ef (or the tuning).
static void Measure(ClientContext &context, const MeasureBindData &bind, MeasureState &state) {
	auto ref = FindHNSWIndex(context, bind.index_name);
	auto count = state.queries.size() / bind.dim;
	if (count == 0) {
		throw InvalidInputException("%s: the query subquery returned no rows", bind.function_name);
	}
	auto started = std::chrono::steady_clock::now();
	auto table = TableVectorsFor(context, ref);
	auto table_handle = table ? table->Handle() : nullptr;
	auto handle = ReadHNSWIndex(ref);
	auto &index = *handle->operator->();
	auto &graph = index.Graph();
	auto threads = index.SchedulerThreads();
	if (bind.kind == MeasureKind::TUNE) {
		vector<HnswBenchPoint> points;
		auto chosen = graph.TuneEf(table_handle, state.queries, bind.k, bind.target, threads,
		                           EffectiveOverfetch(context), points);
		for (auto &point : points) {
			state.rows.push_back(PointRow(point, count, bind.k, Value::BOOLEAN(chosen != 0 && point.ef == chosen)));
		}
		return;
	}
	auto truth = graph.ExactTopK(table_handle, state.queries, bind.k, threads);
	auto truth_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
	for (auto ef : bind.efs) {
		state.rows.push_back(
		    PointRow(graph.Measure(table_handle, state.queries, truth, bind.k, ef, EffectiveOverfetch(context)), count,
		             bind.k, Value::DOUBLE(truth_ms)));
	}
}

//! Writes the next rows of the result; true while more remain.
static bool EmitRows(MeasureState &state, DataChunk &output) {
	idx_t count = 0;
	while (state.offset < state.rows.size() && count < STANDARD_VECTOR_SIZE) {
		auto &row = state.rows[state.offset++];
		for (idx_t col = 0; col < row.size(); col++) {
			output.data[col].SetValue(count, row[col]);
		}
		count++;
	}
	SetChunkSize(output, count);
	return state.offset < state.rows.size();
}

//! With a query subquery: collects each chunk of queries.
static OperatorResultType MeasureInOut(ExecutionContext &context, TableFunctionInput &data, DataChunk &input,
                                       DataChunk &output) {
	auto &bind = data.bind_data->Cast<MeasureBindData>();
	CollectQueries(bind, data.global_state->Cast<MeasureState>(), input);
	SetChunkSize(output, 0);
	return OperatorResultType::NEED_MORE_INPUT;
}

//! With a query subquery: measures once the queries are all in, then returns the rows.
static OperatorFinalizeResultType MeasureFinal(ExecutionContext &context, TableFunctionInput &data, DataChunk &output) {
	auto &bind = data.bind_data->Cast<MeasureBindData>();
	auto &state = data.global_state->Cast<MeasureState>();
	if (!state.measured) {
		state.measured = true;
		Measure(context.client, bind, state);
	}
	return EmitRows(state, output) ? OperatorFinalizeResultType::HAVE_MORE_OUTPUT
	                               : OperatorFinalizeResultType::FINISHED;
}

//! Registers one measuring function: an in-out function fed by the query subquery.
static void RegisterMeasureFunction(ExtensionLoader &loader, const char *name, table_function_bind_t bind,
                                    bool benchmark) {
	// One overload only: DuckDB cannot choose among overloads when one takes a TABLE.
	TableFunction function(name, {LogicalType::VARCHAR, LogicalType::TABLE}, nullptr, bind, MeasureInit);
	function.in_out_function = MeasureInOut;
	function.in_out_function_final = MeasureFinal;
	AddNamedParameter(function, "k", LogicalType::BIGINT);
	if (benchmark) {
		AddNamedParameter(function, "ef", LogicalType::LIST(LogicalType::BIGINT));
	} else {
		AddNamedParameter(function, "target_recall", LogicalType::DOUBLE);
	}
	loader.RegisterFunction(function);
}

struct SampleBindData : public TableFunctionData {
	string index_name;
	idx_t dim = 0;
	idx_t count = SAMPLE_DEFAULT;
	uint64_t seed = 42;
};

static unique_ptr<FunctionData> SampleBind(ClientContext &context, TableFunctionBindInput &input,
                                           vector<LogicalType> &return_types, vector<Identifier> &names) {
	const string fn = "hnsw_sample_queries";
	auto bind = make_uniq<SampleBindData>();
	if (input.inputs[0].IsNull()) {
		throw BinderException("%s: the index name is NULL", fn);
	}
	bind->index_name = input.inputs[0].GetValue<string>();
	if (input.inputs.size() > 1) {
		if (input.inputs[1].IsNull()) {
			throw BinderException("%s: the number of queries is NULL", fn);
		}
		bind->count = NumericCast<idx_t>(NamedInteger(fn, "the number of queries", input.inputs[1], 1, SAMPLE_MAX));
	}
	for (auto &named : input.named_parameters) {
		if (NameText(named.first) == "seed" && !named.second.IsNull()) {
			bind->seed =
			    NumericCast<uint64_t>(NamedInteger(fn, "seed", named.second, 0, NumericLimits<int64_t>::Maximum()));
		}
	}
	auto ref = FindHNSWIndex(context, bind->index_name);
	bind->dim = (*ReadHNSWIndex(ref))->Dimensions();
	return_types = {LogicalType::ARRAY(LogicalType::FLOAT, bind->dim)};
	names = {Identifier("query")};
	return std::move(bind);
}

struct SampleState : public GlobalTableFunctionState {
	bool sampled = false;
	vector<float> queries;
	idx_t offset = 0;
};

static unique_ptr<GlobalTableFunctionState> SampleInit(ClientContext &context, TableFunctionInitInput &input) {
	return make_uniq<SampleState>();
}

static void SampleFunction(ClientContext &context, TableFunctionInput &data, DataChunk &output) {
	auto &bind = data.bind_data->Cast<SampleBindData>();
	auto &state = data.global_state->Cast<SampleState>();
	if (!state.sampled) {
		state.sampled = true;
		auto ref = FindHNSWIndex(context, bind.index_name);
		auto handle = ReadHNSWIndex(ref);
		state.queries = (*handle)->Graph().SampleQueries(bind.count, bind.seed);
	}
	auto rows = state.queries.size() / bind.dim;
	auto count = MinValue<idx_t>(STANDARD_VECTOR_SIZE, rows - state.offset);
	auto &child = ArrayChildMutable(output.data[0]);
	auto out = MutableData<float>(child);
	std::copy_n(state.queries.data() + state.offset * bind.dim, count * bind.dim, out);
	state.offset += count;
	SetChunkSize(output, count);
}

void RegisterBenchmarkFunctions(ExtensionLoader &loader) {
	RegisterMeasureFunction(loader, "hnsw_benchmark", BenchmarkBind, true);
	RegisterMeasureFunction(loader, "hnsw_tune", TuneBind, false);
	TableFunctionSet sample("hnsw_sample_queries");
	for (auto &arguments : {vector<LogicalType>{LogicalType::VARCHAR}, {LogicalType::VARCHAR, LogicalType::BIGINT}}) {
		TableFunction function("hnsw_sample_queries", arguments, SampleFunction, SampleBind, SampleInit);
		AddNamedParameter(function, "seed", LogicalType::BIGINT);
		sample.AddFunction(function);
	}
	loader.RegisterFunction(sample);
}

} // namespace hnsw
} // namespace duckdb
