// read_npy(path) / read_fvecs(path) / read_bvecs(path) / read_ivecs(path): embedding files as
// rows (row_number BIGINT, vector FLOAT[n] or INTEGER[n] for .ivecs), n from the file. Globs
// read several files of one dimension; `filename := true` adds the file's path. The Rust core
// (src/vector_file) validates each file and reads blocks of rows; threads take blocks in turn,
// and each block's batch index keeps the files' row order for INSERT ... SELECT.
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"
#include "rust/hnsw_rust_index.hpp"

#include "duckdb/common/file_system.hpp"
#include "duckdb/function/table_function.hpp"
#include "duckdb/main/extension/extension_loader.hpp"

namespace duckdb {
namespace hnsw {

//! Rows per block: one output chunk.
static constexpr idx_t BLOCK_ROWS = STANDARD_VECTOR_SIZE;

//! The format codes of the C ABI.
enum class VectorFileKind : uint32_t {
	NPY = HNSW_VECTOR_FILE_NPY,
	FVECS = HNSW_VECTOR_FILE_FVECS,
	BVECS = HNSW_VECTOR_FILE_BVECS,
	IVECS = HNSW_VECTOR_FILE_IVECS
};

//! The SQL function reading a format.
static const char *KindFunction(VectorFileKind kind) {
	switch (kind) {
	case VectorFileKind::NPY:
		return "read_npy";
	case VectorFileKind::FVECS:
		return "read_fvecs";
	case VectorFileKind::BVECS:
		return "read_bvecs";
	default:
		return "read_ivecs";
	}
}

//! An open vector file, closed with its handle.
struct OpenVectorFile {
	string path;
	HnswRsVectorFile *file = nullptr;
	uint64_t rows = 0;
	OpenVectorFile(string path_p, HnswRsVectorFile *file_p)
	    : path(std::move(path_p)), file(file_p), rows(hnsw_rs_vector_file_rows(file_p)) {
	}
	OpenVectorFile(const OpenVectorFile &) = delete;
	~OpenVectorFile() {
		hnsw_rs_vector_file_free(file);
	}
};

struct ReadVectorsData : public TableFunctionData {
	string function;
	vector<shared_ptr<OpenVectorFile>> files;
	idx_t dims = 0;
	bool integers = false;
	bool with_filename = false;
	//! First block of each file, and the total, so a block number names a file and a row range.
	vector<idx_t> first_block;
	idx_t blocks = 0;
};

struct ReadVectorsGlobal : public GlobalTableFunctionState {
	atomic<idx_t> next_block{0};
	idx_t blocks = 0;
	idx_t MaxThreads() const override {
		return MaxValue<idx_t>(1, blocks);
	}
};

struct ReadVectorsLocal : public LocalTableFunctionState {
	idx_t block = 0;
};

//! Opens one file through the core; throws its error (file, byte offset, what was expected).
static shared_ptr<OpenVectorFile> OpenFile(const string &function, const string &path, VectorFileKind kind) {
	HnswStatus status;
	auto file = hnsw_rs_vector_file_open(path.c_str(), static_cast<uint32_t>(kind), &status);
	if (!file) {
		throw InvalidInputException("%s: %s", function, status.message);
	}
	return make_shared_ptr<OpenVectorFile>(path, file);
}

template <VectorFileKind KIND>
static unique_ptr<FunctionData> ReadVectorsBind(ClientContext &context, TableFunctionBindInput &input,
                                                vector<LogicalType> &return_types, vector<Identifier> &names) {
	string function = KindFunction(KIND);
	auto &pattern_value = input.inputs[0];
	if (pattern_value.IsNull()) {
		throw InvalidInputException("%s: the path is NULL", function);
	}
	auto pattern = pattern_value.ToString();
	auto data = make_uniq<ReadVectorsData>();
	data->function = function;
	for (auto &named : input.named_parameters) {
		auto name = NameText(named.first);
		if (name == "filename") {
			data->with_filename =
			    !named.second.IsNull() && BooleanValue::Get(named.second.DefaultCastAs(LogicalType::BOOLEAN));
		}
	}
	auto &fs = FileSystem::GetFileSystem(context);
	vector<string> paths;
	for (auto &match : fs.GlobFiles(pattern, FileGlobOptions::DISALLOW_EMPTY)) {
		paths.push_back(match.path);
	}
	std::sort(paths.begin(), paths.end()); // files in name order, whatever the file system lists
	for (auto &path : paths) {
		auto file = OpenFile(function, path, KIND);
		auto dims = hnsw_rs_vector_file_dims(file->file);
		if (!data->files.empty() && dims != data->dims) {
			throw InvalidInputException("%s: %s has %llu dimensions, %s has %llu: the files of one call must "
			                            "have the same dimension",
			                            function, data->files[0]->path, data->dims, path, dims);
		}
		data->dims = dims;
		data->integers = hnsw_rs_vector_file_is_integer(file->file);
		data->first_block.push_back(data->blocks);
		data->blocks += (file->rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
		data->files.push_back(std::move(file));
	}
	if (data->dims > ArrayType::MAX_ARRAY_SIZE) {
		throw InvalidInputException("%s: %s has %llu dimensions, DuckDB arrays hold at most %llu", function,
		                            data->files[0]->path, data->dims, idx_t(ArrayType::MAX_ARRAY_SIZE));
	}
	names.emplace_back("row_number");
	return_types.push_back(LogicalType::BIGINT);
	names.emplace_back("vector");
	return_types.push_back(LogicalType::ARRAY(data->integers ? LogicalType::INTEGER : LogicalType::FLOAT, data->dims));
	if (data->with_filename) {
		names.emplace_back("filename");
		return_types.push_back(LogicalType::VARCHAR);
	}
	return std::move(data);
}

static unique_ptr<GlobalTableFunctionState> ReadVectorsInitGlobal(ClientContext &context,
                                                                  TableFunctionInitInput &input) {
	auto state = make_uniq<ReadVectorsGlobal>();
	state->blocks = input.bind_data->Cast<ReadVectorsData>().blocks;
	return std::move(state);
}

static unique_ptr<LocalTableFunctionState>
ReadVectorsInitLocal(ExecutionContext &context, TableFunctionInitInput &input, GlobalTableFunctionState *global) {
	return make_uniq<ReadVectorsLocal>();
}

static void ReadVectorsScan(ClientContext &context, TableFunctionInput &input, DataChunk &output) {
	auto &data = input.bind_data->Cast<ReadVectorsData>();
	auto &global = input.global_state->Cast<ReadVectorsGlobal>();
	auto &local = input.local_state->Cast<ReadVectorsLocal>();
	auto block = global.next_block++;
	if (block >= data.blocks) {
		SetChunkSize(output, 0);
		return;
	}
	local.block = block;
	// The file holding this block: the last whose first block is not after it.
	auto it = std::upper_bound(data.first_block.begin(), data.first_block.end(), block);
	auto file_index = idx_t(it - data.first_block.begin()) - 1;
	auto &file = *data.files[file_index];
	auto start = (block - data.first_block[file_index]) * BLOCK_ROWS;
	auto want = MinValue<idx_t>(BLOCK_ROWS, file.rows - start);
	auto &vector_column = output.data[1];
	auto &elements = ArrayChildMutable(vector_column);
	HnswStatus status;
	size_t read;
	if (data.integers) {
		read = hnsw_rs_vector_file_read_i32(file.file, start, want, MutableData<int32_t>(elements), &status);
	} else {
		read = hnsw_rs_vector_file_read_f32(file.file, start, want, MutableData<float>(elements), &status);
	}
	if (status.code != HNSW_OK) {
		throw InvalidInputException("%s: %s", data.function, status.message);
	}
	if (read != want) {
		throw InvalidInputException("%s: %s: read %llu of the %llu rows from row %llu: the file changed while it "
		                            "was read",
		                            data.function, file.path, idx_t(read), want, start);
	}
	auto row_numbers = MutableData<int64_t>(output.data[0]);
	for (idx_t i = 0; i < want; i++) {
		row_numbers[i] = int64_t(start + i);
	}
	if (data.with_filename) {
		ReferenceConstant(output.data[2], Value(file.path), want);
	}
	SetChunkSize(output, want);
}

static OperatorPartitionData ReadVectorsPartition(ClientContext &context, TableFunctionGetPartitionInput &input) {
	return OperatorPartitionData(input.local_state->Cast<ReadVectorsLocal>().block);
}

static TableFunction ReadVectorsFunction(const char *name, table_function_bind_t bind) {
	TableFunction function(name, {LogicalType::VARCHAR}, ReadVectorsScan, bind, ReadVectorsInitGlobal,
	                       ReadVectorsInitLocal);
	AddNamedParameter(function, "filename", LogicalType::BOOLEAN);
	function.get_partition_data = ReadVectorsPartition;
	return function;
}

void RegisterReadVectorFunctions(ExtensionLoader &loader) {
	loader.RegisterFunction(
	    ReadVectorsFunction(KindFunction(VectorFileKind::NPY), ReadVectorsBind<VectorFileKind::NPY>));
	loader.RegisterFunction(
	    ReadVectorsFunction(KindFunction(VectorFileKind::FVECS), ReadVectorsBind<VectorFileKind::FVECS>));
	loader.RegisterFunction(
	    ReadVectorsFunction(KindFunction(VectorFileKind::BVECS), ReadVectorsBind<VectorFileKind::BVECS>));
	loader.RegisterFunction(
	    ReadVectorsFunction(KindFunction(VectorFileKind::IVECS), ReadVectorsBind<VectorFileKind::IVECS>));
}

} // namespace hnsw
} // namespace duckdb
