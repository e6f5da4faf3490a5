// hnsw_search(index, query, k [, ef := n]): the k nearest rows of an HNSW index, as
// (row_id, distance), closest first, distances in the index's metric. Join on rowid to get the
// rows.
#include "hnsw_bridge.hpp"
#include "catalog/hnsw_index_catalog.hpp"
#include "hnsw_vectors.hpp"
#include "scan/hnsw_table_vectors.hpp"

#include "duckdb/function/table_function.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/main/extension/extension_loader.hpp"

namespace duckdb {
namespace hnsw {

//! Largest k a search may ask for.
static constexpr int64_t K_MAX = 100000;

struct SearchBindData : public TableFunctionData {
	string index_name;
	vector<float> query;
	idx_t k = 0;
	int64_t ef = 0; // 0: the setting hnsw_ef_search, else the index's ef_search
};

//! A FLOAT[n] / DOUBLE[n] / numeric list value as floats; NULLs are errors.
static vector<float> QueryVector(const Value &value) {
	auto id = value.type().id();
	if (value.IsNull()) {
		throw BinderException("hnsw_search: the query vector is NULL");
	}
	if (id != LogicalTypeId::ARRAY && id != LogicalTypeId::LIST) {
		throw BinderException("hnsw_search: the query must be a FLOAT[n] array, not %s", value.type().ToString());
	}
	vector<float> out;
	idx_t null_element = 0;
	if (!ValueToFloats(value, out, &null_element)) {
		throw BinderException("hnsw_search: query vector element %llu is NULL", null_element);
	}
	return out;
}

static unique_ptr<FunctionData> ScanBind(ClientContext &context, TableFunctionBindInput &input,
                                         vector<LogicalType> &return_types, vector<Identifier> &names) {
	auto bind = make_uniq<SearchBindData>();
	if (input.inputs[0].IsNull()) {
		throw BinderException("hnsw_search: the index name is NULL");
	}
	bind->index_name = input.inputs[0].GetValue<string>();
	bind->query = QueryVector(input.inputs[1]);
	if (input.inputs[2].IsNull()) {
		throw BinderException("hnsw_search: k is NULL");
	}
	auto k = input.inputs[2].GetValue<int64_t>();
	if (k < 1 || k > K_MAX) {
		throw BinderException("hnsw_search: k must be between 1 and %lld, not %lld", K_MAX, k);
	}
	bind->k = NumericCast<idx_t>(k);
	for (auto &named : input.named_parameters) {
		if (named.first == "ef" && !named.second.IsNull()) {
			bind->ef = named.second.GetValue<int64_t>();
			if (bind->ef < 1) {
				throw BinderException("hnsw_search: ef must be at least 1, not %lld", bind->ef);
			}
		}
	}
	// Fail early on unknown indexes and wrong dimensions.
	auto ref = FindHNSWIndex(context, bind->index_name);
	auto handle = ReadHNSWIndex(ref);
	if (bind->query.size() != (*handle)->Dimensions()) {
		throw BinderException("hnsw_search: index \"%s\" expects %llu dimensions, not %llu", bind->index_name,
		                      (*handle)->Dimensions(), bind->query.size());
	}
	return_types = {LogicalType::BIGINT, LogicalType::FLOAT};
	names = {Identifier("row_id"), Identifier("distance")};
	return std::move(bind);
}

struct ScanState : public GlobalTableFunctionState {
	bool searched = false;
	idx_t offset = 0;
	vector<row_t> row_ids;
	vector<float> distances;
};

static unique_ptr<GlobalTableFunctionState> ScanInit(ClientContext &context, TableFunctionInitInput &input) {
	return make_uniq<ScanState>();
}

//! The k nearest rows: a float32 index's search answers exactly; a quantized index's k times
//! overfetch candidates are re-ranked with the table's own vectors, so distances are exact.
static void Search(ClientContext &context, const SearchBindData &bind, ScanState &state) {
	auto ref = FindHNSWIndex(context, bind.index_name);
	auto handle = ReadHNSWIndex(ref);
	auto &index = *handle->operator->();
	auto dim = bind.query.size();
	auto params = index.Graph().Params();
	if (params.quantization == 0) {
		auto ef = EffectiveEf(context, bind.ef, index, bind.k);
		index.Graph().Search(bind.query.data(), dim, bind.k, ef, state.row_ids, state.distances);
		return;
	}
	auto overfetch = EffectiveOverfetch(context);
	auto want = bind.k * (overfetch ? overfetch : NumericCast<idx_t>(params.overfetch));
	auto ef = EffectiveEf(context, bind.ef, index, want);
	vector<row_t> candidates;
	vector<float> estimates;
	index.Graph().Search(bind.query.data(), dim, want, ef, candidates, estimates);
	auto column = index.GetColumnIds()[0];
	auto type = index.logical_types[0];
	handle.reset(); // no index handle may be held while DuckDB reads the table
	vector<uint64_t> labels;
	vector<float> vectors;
	FetchTableVectors(context, IndexedTable(context, ref), column, type, dim, candidates, labels, vectors);
	handle = ReadHNSWIndex(ref);
	(*handle)->Graph().Rerank(bind.query.data(), dim, labels, vectors, bind.k, state.row_ids, state.distances);
}

static void ScanFunction(ClientContext &context, TableFunctionInput &input, DataChunk &output) {
	auto &bind = input.bind_data->Cast<SearchBindData>();
	auto &state = input.global_state->Cast<ScanState>();
	if (!state.searched) {
		Search(context, bind, state);
		state.searched = true;
	}
	auto count = MinValue<idx_t>(STANDARD_VECTOR_SIZE, state.row_ids.size() - state.offset);
	auto ids = MutableData<int64_t>(output.data[0]);
	auto dists = MutableData<float>(output.data[1]);
	for (idx_t i = 0; i < count; i++) {
		ids[i] = state.row_ids[state.offset + i];
		dists[i] = state.distances[state.offset + i];
	}
	state.offset += count;
	SetChunkSize(output, count);
}

void RegisterSearchFunction(ExtensionLoader &loader) {
	TableFunction scan("hnsw_search", {LogicalType::VARCHAR, LogicalType::ANY, LogicalType::BIGINT}, ScanFunction,
	                   ScanBind, ScanInit);
	// NULL (the default) means: SET hnsw_ef_search, else the index's ef_search.
	AddNamedParameter(scan, "ef", LogicalType::BIGINT);
	loader.RegisterFunction(scan);
}

} // namespace hnsw
} // namespace duckdb
