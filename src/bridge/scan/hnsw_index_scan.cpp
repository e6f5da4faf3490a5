// HNSW_INDEX_SCAN execution: search the graph once, then fetch the candidate rows by rowid.
// When this transaction has uncommitted changes (which the index cannot see yet) or the query
// vector is NULL or unsearchable, it reads the whole table instead; when fewer than k candidates
// are visible to this snapshot (other transactions' changes, or rows with NULL vectors), a table
// scan completes the answer.
// Two forms: a table scan (constant query vector) and an in-out function that takes the query
// vector from its input (a scalar subquery or CTE value), one search per input row.
#include "scan/hnsw_index_scan.hpp"
#include "catalog/hnsw_index_catalog.hpp"
#include "scan/hnsw_filtered_rows.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/common/vector_operations/vector_operations.hpp"
#include "duckdb/execution/expression_executor.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/parallel/task_scheduler.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/scan_state.hpp"
#include "duckdb/transaction/duck_transaction.hpp"
#include "duckdb/transaction/local_storage.hpp"

#include <atomic>
#include <exception>
#include <thread>

namespace duckdb {
namespace hnsw {

unique_ptr<FunctionData> HNSWScanBindData::Copy() const {
	auto copy = make_uniq<HNSWScanBindData>(table, index_name, query, k);
	copy->query_column = query_column;
	copy->passthrough_base = passthrough_base;
	copy->filtered = filtered;
	copy->predicate_columns = predicate_columns;
	copy->predicate_filters = predicate_filters ? predicate_filters->Copy() : nullptr;
	for (auto &expression : predicate) {
		copy->predicate.push_back(expression->Copy());
	}
	copy->predicate_text = predicate_text;
	copy->max_distance = max_distance;
	copy->vector_column = vector_column;
	copy->distance = distance ? distance->Copy() : nullptr;
	copy->distance_column = distance_column;
	copy->descending = descending;
	copy->nulls_last = nulls_last;
	copy->unread_outputs = unread_outputs;
	return std::move(copy);
}

bool HNSWScanBindData::Equals(const FunctionData &other_p) const {
	auto &other = other_p.Cast<HNSWScanBindData>();
	if (filtered || other.filtered) {
		return this == &other; // predicates are not compared: never merge two filtered scans
	}
	if (distance || other.distance) {
		return this == &other; // a fused LATERAL join: never merged with another scan
	}
	return &table == &other.table && index_name == other.index_name && query == other.query && k == other.k &&
	       query_column == other.query_column && passthrough_base == other.passthrough_base;
}

//! Shared access to the scan's index: the one of this very table (names are only unique per
//! schema); an error if it was dropped while the query ran.
static unique_ptr<IndexReadHandle<HNSWIndex>> ReadScanIndex(const HNSWScanBindData &bind) {
	auto handle = ReadTableHNSWIndex(bind.table, bind.index_name);
	if (!handle) {
		throw CatalogException("HNSW index \"%s\" was dropped while the query ran", bind.index_name);
	}
	return handle;
}

//! True when this transaction changed the table: its uncommitted inserts and deletes are not in
//! the index yet (deletes of committed rows are not in LocalStorage either, hence ChangesMade).
static bool TableChanged(ClientContext &context, const HNSWScanBindData &bind) {
	auto &storage = bind.table.Cast<DuckTableEntry>().GetStorage();
	auto &transaction = DuckTransaction::Get(context, bind.table.catalog);
	return LocalStorage::Get(transaction).Find(storage) || transaction.ChangesMade();
}

//! Reads the rows of one search: the candidates by rowid, or the whole table as a fallback.
//! Rowids are always read (as a hidden extra column if the query does not ask for them) so that
//! a search whose candidates are not all visible to this snapshot can be completed by a table
//! scan that skips the rows already returned: never fewer than k rows, never a row twice.
class CandidateReader {
public:
	//! Storage columns to produce, from the scan's columns and projection.
	void SetColumns(const HNSWScanBindData &bind, const vector<ColumnIndex> &columns, const vector<idx_t> &projection) {
		vector<LogicalType> types;
		auto outputs = projection.empty() ? columns.size() : projection.size();
		for (idx_t i = 0; i < outputs; i++) {
			auto &column = columns[projection.empty() ? i : projection[i]];
			if (!column.IsVirtualColumn() && column.GetPrimaryIndex() == bind.distance_column) {
				distance_slot = i; // the exact top-k form's distance: computed by the caller
				continue;
			}
			if (!column.IsVirtualColumn() && column.GetPrimaryIndex() >= bind.passthrough_base) {
				// An outer column of the in-out form (they come after the table's): filled by the
				// caller from its input row.
				passthrough.push_back(column.GetPrimaryIndex() - bind.passthrough_base);
				continue;
			}
			if (column.IsRowIdColumn()) {
				rowid_slot = fetch_ids.size();
				fetch_ids.push_back(StorageIndex(COLUMN_IDENTIFIER_ROW_ID));
				types.push_back(LogicalType::ROW_TYPE);
			} else {
				auto &type = bind.table.GetColumn(LogicalIndex(column.GetPrimaryIndex())).Type();
				if (column.GetPrimaryIndex() == bind.vector_column && type.id() == LogicalTypeId::ARRAY &&
				    ArrayType::GetChildType(type).id() == LogicalTypeId::FLOAT) {
					vector_slot = fetch_ids.size();
				}
				fetch_ids.push_back(bind.table.GetStorageIndex(column));
				types.push_back(type);
			}
		}
		output_count = outputs - passthrough.size() - (distance_slot.IsValid() ? 1 : 0);
		if (!rowid_slot.IsValid()) {
			rowid_slot = fetch_ids.size();
			fetch_ids.push_back(StorageIndex(COLUMN_IDENTIFIER_ROW_ID));
			types.push_back(LogicalType::ROW_TYPE);
		}
		buffer.Initialize(Allocator::DefaultAllocator(), types);
		if (vector_slot.IsValid()) {
			// The columns of a fetch that takes the vector from the index instead.
			vector<LogicalType> lean_types;
			for (idx_t c = 0; c < fetch_ids.size(); c++) {
				if (c != vector_slot.GetIndex()) {
					lean_ids.push_back(fetch_ids[c]);
					lean_types.push_back(types[c]);
				}
			}
			lean.Initialize(Allocator::DefaultAllocator(), lean_types);
		}
	}

	//! Starts reading candidates found by a batch search (see HNSWInOutFunction); with `want` below
	//! bind.k, a table scan completes fewer than `want` visible rows (0: never).
	void StartWithCandidates(const HNSWScanBindData &bind, vector<row_t> &&candidates,
	                         idx_t want = DConstants::INVALID_INDEX) {
		row_ids = std::move(candidates);
		returned.clear();
		offset = 0;
		k = want == DConstants::INVALID_INDEX ? bind.k : want;
		full_scan = false;
		filtered = false;
		std::sort(row_ids.begin(), row_ids.end());
	}

	//! Outer columns passed through, in output order after the table's (input column indexes,
	//! counted after the query vector).
	vector<idx_t> passthrough;
	//! Number of output columns read from the table.
	idx_t output_count = 0;
	//! Output position of the exact top-k form's distance column, if the scan has one.
	optional_idx distance_slot;
	//! Row ids of the rows the last Next() returned, in output order.
	vector<row_t> emitted_ids;
	//! Counts refills of the fetch buffer: rows Next() returned stay valid while it is unchanged.
	idx_t fills = 0;

	//! Starts reading for one query vector (null: read everything).
	void Start(ClientContext &context, const HNSWScanBindData &bind, const float *query) {
		row_ids.clear();
		returned.clear();
		offset = 0;
		k = bind.k;
		if (bind.filtered) {
			StartFiltered(context, bind, query);
			return;
		}
		full_scan = !query || TableChanged(context, bind);
		if (full_scan) {
			StartTableScan(context, bind);
			return;
		}
		auto handle = ReadScanIndex(bind);
		auto &index = *handle->operator->();
		auto &graph = index.Graph();
		// Rows deleted while older snapshots still run stay candidates; the core widens the search
		// by as many, since this snapshot may not see them.
		auto ef = EffectiveEf(context, 0, index, bind.k);
		try {
			graph.Candidates(query, index.Dimensions(), bind.k, ef, EffectiveOverfetch(context), row_ids);
		} catch (InvalidInputException &) {
			// A query vector the index cannot search (NaN, or zero under cosine): the exact plan
			// still answers (with NaN distances), so read the table.
			row_ids.clear();
			full_scan = true;
			handle.reset(); // released first: no index handle may be held while a scan locks the table
			StartTableScan(context, bind);
			return;
		}
		std::sort(row_ids.begin(), row_ids.end());
	}

	//! Fills the first columns of `out` with the next rows; 0 when done.
	idx_t Next(ClientContext &context, const HNSWScanBindData &bind, DataChunk &out) {
		auto &storage = bind.table.Cast<DuckTableEntry>().GetStorage();
		auto &transaction = DuckTransaction::Get(context, bind.table.catalog);
		while (!full_scan && offset < row_ids.size()) {
			// Rows this snapshot cannot see are dropped by Fetch. Committed and uncommitted rows
			// (row ids from MAX_ROW_ID) go in separate batches: DuckDB 2.0.0's Fetch of a mixed
			// batch assumes every committed row is visible and misplaces rows when one is not.
			auto count = MinValue<idx_t>(STANDARD_VECTOR_SIZE, row_ids.size() - offset);
			bool local = row_ids[offset] >= MAX_ROW_ID;
			for (idx_t i = 1; i < count; i++) {
				if ((row_ids[offset + i] >= MAX_ROW_ID) != local) {
					count = i;
					break;
				}
			}
			auto ids = RowIdVector(row_ids.data() + offset, count);
			offset += count;
			buffer.Reset();
			fills++;
			if (local || !FetchVectorsFromIndex(bind, storage, transaction, ids, count)) {
				storage.Fetch(transaction, buffer, fetch_ids, ids, count, fetch_state);
			}

			if (buffer.size() > 0) {
				return Emit(out, false);
			}
		}
		if (!full_scan) {
			if (returned.size() >= k || filtered) {
				// A filtered search's candidates are all visible matching rows, enough by construction.
				return Finish(out);
			}
			// Fewer than k candidates are visible here (or the index holds fewer than k rows, so
			// rows with a NULL vector belong in the answer): complete from the table.
			full_scan = true;
			StartTableScan(context, bind);
		}
		while (true) {
			buffer.Reset();
			fills++;
			storage.Scan(transaction, buffer, *table_scan);
			if (buffer.size() == 0) {
				return Finish(out);
			}
			if (Emit(out, !returned.empty()) > 0) {
				return out.size();
			}
		}
	}

	//! What the last filtered search did (for EXPLAIN ANALYZE).
	HnswFilterReport report{};
	bool filtered = false;

private:
	//! A filtered search: the matching rows from DuckDB, then the core's candidates among them.
	void StartFiltered(ClientContext &context, const HNSWScanBindData &bind, const float *query) {
		filtered = true;
		full_scan = false;
		if (!rows_collected) {
			// The predicate does not depend on the query: one row set serves every search of
			// this statement on this thread (the in-out form runs one per outer row).
			CollectMatchingRows(context, bind, rows);
			rows_collected = true;
		}
		report = HnswFilterReport{};
		report.matches = rows.committed.size() + rows.local.size();
		bool searched = false;
		bool bounded = bind.max_distance < std::numeric_limits<float>::infinity();
		if (query) {
			auto handle = ReadScanIndex(bind);
			auto &index = *handle->operator->();
			auto ef = EffectiveEf(context, 0, index, bind.k);
			// A quantized index's distances are estimates: they cannot prove a row outside a
			// distance bound, so every matching row is a candidate (the exact answer's rows).
			bool estimates = index.Graph().Params().quantization != 0;
			if (!(bounded && estimates)) {
				try {
					index.Graph().CandidatesFiltered(query, index.Dimensions(), bind.k, ef, rows.committed,
					                                 bind.max_distance, FilterSettingsFor(context), row_ids, report);
					searched = true;
					report.matches += rows.local.size();
				} catch (InvalidInputException &) {
					// A query vector the index cannot search (NaN, or zero under cosine): every
					// matching row is a candidate, as in the exact plan.
				}
			}
		}
		if (!searched || (row_ids.size() < bind.k && !bounded)) {
			// No query vector, or fewer than k indexed matches: rows without a vector belong in
			// the answer too (last), so every matching row is a candidate. Under a distance bound
			// they never qualify, and the core already returned every row within it.
			row_ids = rows.committed;
		}
		// This transaction's own rows are not in the index yet: all of them are candidates.
		row_ids.insert(row_ids.end(), rows.local.begin(), rows.local.end());
		std::sort(row_ids.begin(), row_ids.end());
	}

	//! Fetches committed candidate rows without their vectors, which the index copies in when it
	//! holds them bit for bit (a float32 index under l2sq or ip; an UPDATE of the vector gives
	//! the row a new row id, so a row id's vector never changes). A FLOAT[n] row costs DuckDB
	//! several times more to fetch than the other columns together. False (nothing read) when
	//! it cannot: the caller fetches the whole rows.
	bool FetchVectorsFromIndex(const HNSWScanBindData &bind, DataTable &storage, DuckTransaction &transaction,
	                           Vector &ids, idx_t count) {
		if (!vector_slot.IsValid()) {
			return false;
		}
		auto slot = vector_slot.GetIndex();
		auto &vectors = buffer.data[slot];
		auto dims = ArrayType::GetSize(vectors.GetType());
		// The index is looked up for each batch (no handle may be held while the table is read):
		// another transaction may have dropped it, or replaced it under the same name.
		if (!VectorIndex(bind, dims)) {
			return false;
		}
		lean.Reset();
		storage.Fetch(transaction, lean, lean_ids, ids, count, lean_state);
		auto rows = lean.size();
		auto lean_rowid = rowid_slot.GetIndex() - (rowid_slot.GetIndex() > slot ? 1 : 0);
		UnifiedVectorFormat id_format;
		ToUnifiedFormat(lean.data[lean_rowid], rows, id_format);
		auto id_data = UnifiedVectorFormat::GetData<row_t>(id_format);
		fetched_ids.resize(rows);
		for (idx_t i = 0; i < rows; i++) {
			fetched_ids[i] = id_data[id_format.sel->get_index(i)];
		}
		auto handle = VectorIndex(bind, dims);
		if (!handle || !(*handle)->Graph().CopyInputVectors(fetched_ids.data(), rows, dims,
		                                                    MutableData<float>(ArrayChildMutable(vectors)))) {
			return false; // (or a row it does not hold: with a NULL vector, or not indexed yet)
		}
		for (idx_t c = 0, from = 0; c < fetch_ids.size(); c++) {
			if (c != slot) {
				buffer.data[c].Reference(lean.data[from++]);
			}
		}
		SetChunkSize(buffer, rows);
		return true;
	}

	//! The scan's index, if it still exists and stores this scan's vector column bit for bit at
	//! `dims` dimensions; null otherwise.
	unique_ptr<IndexReadHandle<HNSWIndex>> VectorIndex(const HNSWScanBindData &bind, idx_t dims) const {
		auto handle = ReadTableHNSWIndex(bind.table, bind.index_name);
		if (!handle) {
			return nullptr;
		}
		auto &index = *handle->operator->();
		auto &columns = index.GetColumnIds();
		bool holds = columns.size() == 1 && columns[0] == fetch_ids[vector_slot.GetIndex()].GetPrimaryIndex() &&
		             index.Dimensions() == dims && index.Graph().StoresInputVectors();
		return holds ? std::move(handle) : nullptr;
	}

	void StartTableScan(ClientContext &context, const HNSWScanBindData &bind) {
		auto &storage = bind.table.Cast<DuckTableEntry>().GetStorage();
		auto &transaction = DuckTransaction::Get(context, bind.table.catalog);
		table_scan = make_uniq<TableScanState>();
		storage.InitializeScan(context, transaction, *table_scan, fetch_ids);
	}

	//! Moves the buffered rows to `out` (skipping rows already returned if asked); returns the count.
	idx_t Emit(DataChunk &out, bool skip_returned) {
		UnifiedVectorFormat ids;
		ToUnifiedFormat(buffer.data[rowid_slot.GetIndex()], buffer.size(), ids);
		auto id_data = UnifiedVectorFormat::GetData<row_t>(ids);
		SelectionVector keep(buffer.size());
		idx_t kept = 0;
		emitted_ids.clear();
		for (idx_t i = 0; i < buffer.size(); i++) {
			auto row_id = id_data[ids.sel->get_index(i)];
			if (skip_returned && returned.count(row_id)) {
				continue;
			}
			emitted_ids.push_back(row_id);
			if (!full_scan && !filtered) {
				returned.insert(row_id); // (a filtered search never completes from the table)
			}
			keep.set_index(kept++, i);
		}
		for (idx_t col = 0; col < output_count; col++) {
			if (kept == buffer.size()) {
				out.data[col].Reference(buffer.data[col]);
			} else {
				out.data[col].Slice(buffer.data[col], keep, kept);
			}
		}
		SetChunkSize(out, kept);
		return kept;
	}

	idx_t Finish(DataChunk &out) {
		SetChunkSize(out, 0);
		return 0;
	}

	vector<StorageIndex> fetch_ids;
	optional_idx rowid_slot;
	//! The indexed FLOAT[n] column's position in fetch_ids, if the scan reads it; the other
	//! columns and a chunk for fetching only them (see FetchVectorsFromIndex).
	optional_idx vector_slot;
	vector<StorageIndex> lean_ids;
	DataChunk lean;
	ColumnFetchState lean_state;
	vector<row_t> fetched_ids;
	DataChunk buffer;
	idx_t k = 0;
	//! Candidate rowids, ascending (fetch order).
	vector<row_t> row_ids;
	idx_t offset = 0;
	//! Rowids returned from the candidates, so a completing table scan does not repeat them.
	unordered_set<row_t> returned;
	bool full_scan = false;
	MatchingRows rows;
	bool rows_collected = false;
	unique_ptr<TableScanState> table_scan;
	ColumnFetchState fetch_state;
};

struct HNSWScanState : public GlobalTableFunctionState {
	CandidateReader reader;
};

static unique_ptr<GlobalTableFunctionState> HNSWScanInit(ClientContext &context, TableFunctionInitInput &input) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	auto state = make_uniq<HNSWScanState>();
	state->reader.SetColumns(bind, input.column_indexes, input.projection_ids);
	state->reader.Start(context, bind, bind.query.data());
	return std::move(state);
}

static void HNSWScanFunction(ClientContext &context, TableFunctionInput &input, DataChunk &output) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	input.global_state->Cast<HNSWScanState>().reader.Next(context, bind, output);
}

//! Exact top-k form: one thread's reader, distance evaluation and ranking of one outer row.
struct TopKRanker {
	CandidateReader reader;
	unique_ptr<ExpressionExecutor> executor;
	vector<LogicalType> fetched_types;
	//! The reader's rows (a chunk of references), `eval` (them and the query vector) and their
	//! distances.
	DataChunk fetched;
	DataChunk eval;
	DataChunk distances;
	struct Ranked {
		double distance;
		bool valid;
		row_t row_id;
		idx_t position;
	};
	vector<Ranked> ranked;
	//! After Rank(): how many rows the reader returned, the k chosen, and whether they all came in
	//! one chunk (still in `fetched`, chosen by `selected`).
	idx_t visible = 0;
	idx_t selected_count = 0;
	bool single = false;
	SelectionVector selected;

	TopKRanker(ClientContext &context, const HNSWScanBindData &bind, const vector<ColumnIndex> &column_indexes,
	           const vector<idx_t> &projection_ids, vector<LogicalType> types, const LogicalType &query_type)
	    : executor(make_uniq<ExpressionExecutor>(context, *bind.distance)), fetched_types(std::move(types)) {
		reader.SetColumns(bind, column_indexes, projection_ids);
		auto eval_types = fetched_types;
		eval_types.push_back(query_type);
		eval.Initialize(Allocator::DefaultAllocator(), eval_types); // (a constant array needs its buffers)
		distances.Initialize(Allocator::DefaultAllocator(), {ReturnType(*bind.distance)});
	}

	//! The next rows of the reader in `fetched`, which keeps the last rows when there are no more
	//! (read into an empty chunk each time: a chunk of references cannot be resized to none).
	idx_t NextFetched(ClientContext &context, const HNSWScanBindData &bind) {
		DataChunk next;
		next.InitializeEmpty(fetched_types);
		auto count = reader.Next(context, bind, next);
		if (count > 0) {
			fetched.Destroy();
			fetched.InitializeEmpty(fetched_types);
			for (idx_t c = 0; c < next.ColumnCount(); c++) {
				fetched.data[c].Reference(next.data[c]);
			}
			SetChunkSize(fetched, count);
		}
		return count;
	}

	//! Evaluates the SQL distance over the `count` rows in `fetched` for input row `row`.
	void ComputeDistances(const HNSWScanBindData &bind, DataChunk &input, idx_t row, idx_t count) {
		auto columns = fetched.ColumnCount();
		eval.Reset();
		for (idx_t c = 0; c < columns; c++) {
			eval.data[c].Reference(fetched.data[c]);
		}
		ReferenceRow(eval.data[columns], count, input.data[bind.query_column], row, input.size());
		SetChunkSize(eval, count);
		distances.Reset();
		executor->ExecuteExpression(eval, distances.data[0]);
		SetChunkSize(distances, count);
	}

	//! Reads every row the started reader returns for input row `row`, ranks them by the SQL
	//! distance (NULL last as in the exact plan, NaN after numbers, equal distances by row id so
	//! the answer does not depend on threads) and keeps the first k.
	void Rank(ClientContext &context, const HNSWScanBindData &bind, DataChunk &input, idx_t row) {
		ranked.clear();
		visible = 0;
		idx_t chunks = 0;
		idx_t fills = 0;
		while (auto count = NextFetched(context, bind)) {
			chunks++;
			visible += count;
			fills = reader.fills;
			ComputeDistances(bind, input, row, count);
			UnifiedVectorFormat format;
			ToUnifiedFormat(distances.data[0], count, format);
			bool is_double = distances.data[0].GetType().id() == LogicalTypeId::DOUBLE;
			for (idx_t i = 0; i < count; i++) {
				auto index = format.sel->get_index(i);
				double value = is_double ? UnifiedVectorFormat::GetData<double>(format)[index]
				                         : double(UnifiedVectorFormat::GetData<float>(format)[index]);
				bool valid = format.validity.RowIsValid(index);
				if (valid || bind.nulls_last) {
					ranked.push_back({value, valid, reader.emitted_ids[i], i});
				}
			}
		}
		bool descending = bind.descending;
		auto before = [descending](const Ranked &a, const Ranked &b) {
			if (a.valid != b.valid) {
				return a.valid;
			}
			if (a.valid) {
				bool a_nan = std::isnan(a.distance), b_nan = std::isnan(b.distance);
				if (a_nan != b_nan) {
					return descending ? a_nan : b_nan; // NaN sorts above every number
				}
				if (!a_nan && a.distance != b.distance) {
					return descending ? a.distance > b.distance : a.distance < b.distance;
				}
			}
			return a.row_id < b.row_id;
		};
		selected_count = MinValue<idx_t>(bind.k, ranked.size());
		std::partial_sort(ranked.begin(), ranked.begin() + selected_count, ranked.end(), before);
		single = chunks == 1 && fills == reader.fills;
		if (single) {
			selected.Initialize(MaxValue<idx_t>(selected_count, 1));
			for (idx_t i = 0; i < selected_count; i++) {
				selected.set_index(i, ranked[i].position);
			}
		}
	}

	//! After Rank() found more than one chunk: reads the k chosen rows again, by row id.
	void StartChosen(const HNSWScanBindData &bind) {
		vector<row_t> chosen;
		for (idx_t i = 0; i < selected_count; i++) {
			chosen.push_back(ranked[i].row_id);
		}
		reader.StartWithCandidates(bind, std::move(chosen), 0);
	}
};

//! Per-thread state of the in-out form: the input chunk being answered, row by row.
struct HNSWInOutState : public LocalTableFunctionState {
	CandidateReader reader;
	//! A new input chunk arrived: search for all its rows first.
	bool chunk_started = false;
	idx_t row = 0;
	bool row_started = false;
	//! Per input row: candidates of the batch search, and whether it searched that row.
	vector<vector<row_t>> candidates;
	vector<bool> searched;
	vector<float> queries;
	vector<float> query;

	//! Exact top-k form: the main thread's ranker, answers ranked ahead on other threads, the
	//! phase of the current row, and the scan's columns (for the other threads' readers).
	unique_ptr<TopKRanker> ranker;
	//! (One outer row's answer, ranked ahead on another thread: the chosen rows and their
	//! distance, last; null when that row needs the main thread: a full scan, many rows.)
	vector<unique_ptr<DataChunk>> answers;
	enum class TopKPhase { RANK, EMIT_SELECTED, FETCH_CHOSEN, DONE } phase = TopKPhase::RANK;
	vector<ColumnIndex> column_indexes;
	vector<idx_t> projection_ids;
};

static unique_ptr<LocalTableFunctionState> HNSWInOutInit(ExecutionContext &context, TableFunctionInitInput &input,
                                                         GlobalTableFunctionState *global_state) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	auto state = make_uniq<HNSWInOutState>();
	state->reader.SetColumns(bind, input.column_indexes, input.projection_ids);
	state->column_indexes = input.column_indexes;
	for (auto id : input.projection_ids) {
		state->projection_ids.push_back(id);
	}
	return std::move(state);
}

//! Reads the query vector of input row `row` into `query`; false when it is NULL or has a NULL
//! element (the exact plan answers those: every row has a NULL distance, or it raises its error).
static bool InputQuery(DataChunk &input, idx_t column, idx_t row, float *query) {
	auto &vector = input.data[column];
	UnifiedVectorFormat outer;
	ToUnifiedFormat(vector, input.size(), outer);
	auto position = outer.sel->get_index(row);
	if (!outer.validity.RowIsValid(position)) {
		return false;
	}
	auto size = ArrayType::GetSize(vector.GetType());
	UnifiedVectorFormat elements;
	ArrayElementsToUnifiedFormat(vector, elements);
	auto data = UnifiedVectorFormat::GetData<float>(elements);
	auto base = position * size;
	for (idx_t i = 0; i < size; i++) {
		auto index = elements.sel->get_index(base + i);
		if (!elements.validity.RowIsValid(index)) {
			return false;
		}
		query[i] = data[index];
	}
	return true;
}

//! Searches for every row of a new input chunk at once, on all of DuckDB's threads. Rows it does
//! not search (NULL or invalid vectors, a filtered search, a table this transaction changed)
//! are answered one by one by the reader.
static void SearchChunk(ExecutionContext &context, const HNSWScanBindData &bind, DataChunk &input,
                        HNSWInOutState &state) {
	auto n = input.size();
	state.searched.assign(n, false);
	state.candidates.resize(n);
	if (n == 0 || bind.filtered || TableChanged(context.client, bind)) {
		return;
	}
	auto handle = ReadScanIndex(bind);
	auto &index = *handle->operator->();
	auto dims = index.Dimensions();
	if (ArrayType::GetSize(input.data[bind.query_column].GetType()) != dims) {
		return;
	}
	vector<idx_t> rows;
	state.queries.resize(n * dims);
	for (idx_t row = 0; row < n; row++) {
		if (InputQuery(input, bind.query_column, row, state.queries.data() + rows.size() * dims)) {
			rows.push_back(row);
		}
	}
	auto threads = NumericCast<idx_t>(TaskScheduler::GetScheduler(context.client).NumberOfThreads());
	vector<vector<row_t>> found;
	vector<bool> searched;
	index.Graph().CandidatesBatch(state.queries.data(), rows.size(), dims, bind.k,
	                              EffectiveEf(context.client, 0, index, bind.k), EffectiveOverfetch(context.client),
	                              threads, found, searched);
	for (idx_t i = 0; i < rows.size(); i++) {
		state.searched[rows[i]] = searched[i];
		state.candidates[rows[i]] = std::move(found[i]);
	}
}

//! Starts reading the candidates of input row `state.row` (searched with its chunk, or one by one).
static void StartRow(ExecutionContext &context, const HNSWScanBindData &bind, DataChunk &input, HNSWInOutState &state,
                     CandidateReader &reader) {
	if (state.searched[state.row]) {
		reader.StartWithCandidates(bind, std::move(state.candidates[state.row]));
	} else {
		state.query.resize(ArrayType::GetSize(input.data[bind.query_column].GetType()));
		bool has_query = InputQuery(input, bind.query_column, state.row, state.query.data());
		reader.Start(context.client, bind, has_query ? state.query.data() : nullptr);
	}
}

//! Exact top-k form: which table output columns an operator above reads (the others, such as
//! the vector, only feed the distance and are emitted as NULL instead of copied).
static vector<bool> ReadOutputs(const HNSWScanBindData &bind, idx_t columns) {
	vector<bool> read(columns, true);
	for (auto column : bind.unread_outputs) {
		if (column < columns) {
			read[column] = false;
		}
	}
	return read;
}

//! Exact top-k form: ranks the searched rows of a new input chunk on all threads, each with its
//! own reader, into `state.answers`. Rows whose candidates are not all visible, or do not fit one
//! fetch, are left to the main thread, which may complete them from the table.
static void RankChunk(ExecutionContext &context, const HNSWScanBindData &bind, DataChunk &input,
                      HNSWInOutState &state) {
	auto n = input.size();
	state.answers.clear();
	state.answers.resize(n);
	vector<idx_t> rows;
	for (idx_t row = 0; row < n; row++) {
		if (state.searched[row]) {
			rows.push_back(row);
		}
	}
	auto threads = NumericCast<idx_t>(TaskScheduler::GetScheduler(context.client).NumberOfThreads());
	threads = MaxValue<idx_t>(1, MinValue<idx_t>(threads, rows.size() / 64));
	auto answer_types = state.ranker->fetched_types;
	answer_types.push_back(ReturnType(*bind.distance));
	auto query_type = input.data[bind.query_column].GetType();
	auto read = ReadOutputs(bind, state.ranker->fetched_types.size());
	std::atomic<idx_t> next(0);
	vector<std::exception_ptr> errors(threads);
	auto work = [&](idx_t thread) {
		try {
			TopKRanker ranker(context.client, bind, state.column_indexes, state.projection_ids,
			                  state.ranker->fetched_types, query_type);
			constexpr idx_t BLOCK = 16;
			for (idx_t start = next.fetch_add(BLOCK); start < rows.size(); start = next.fetch_add(BLOCK)) {
				for (idx_t i = start; i < MinValue<idx_t>(start + BLOCK, rows.size()); i++) {
					auto row = rows[i];
					ranker.reader.StartWithCandidates(bind, vector<row_t>(state.candidates[row]), 0);
					ranker.Rank(context.client, bind, input, row);
					if (!ranker.single || ranker.visible < bind.k) {
						continue; // the main thread completes it from the table, or fetches it again
					}
					auto answer = make_uniq<DataChunk>();
					auto count = ranker.selected_count;
					answer->Initialize(Allocator::DefaultAllocator(), answer_types, MaxValue<idx_t>(count, 1));
					for (idx_t c = 0; c < ranker.fetched_types.size(); c++) {
						if (!read[c]) {
							continue;
						}
						VectorOperations::Copy(ranker.fetched.data[c], answer->data[c], ranker.selected, count, 0, 0);
					}
					VectorOperations::Copy(ranker.distances.data[0], answer->data[ranker.fetched_types.size()],
					                       ranker.selected, count, 0, 0);
					SetChunkSize(*answer, count);
					state.answers[row] = std::move(answer);
				}
			}
		} catch (...) {
			errors[thread] = std::current_exception();
		}
	};
	vector<std::thread> helpers;
	for (idx_t thread = 1; thread < threads; thread++) {
		helpers.emplace_back(work, thread);
	}
	work(0);
	for (auto &helper : helpers) {
		helper.join();
	}
	for (auto &error : errors) {
		if (error) {
			std::rethrow_exception(error);
		}
	}
}

//! Exact top-k form, an answer fetched again by row id: its next rows, with the outer columns and
//! the distance; 0 when it has no more.
static idx_t EmitChosen(ExecutionContext &context, const HNSWScanBindData &bind, DataChunk &input,
                        HNSWInOutState &state, DataChunk &output) {
	auto &ranker = *state.ranker;
	auto &reader = ranker.reader;
	auto count = ranker.NextFetched(context.client, bind);
	if (count == 0) {
		return 0;
	}
	ranker.ComputeDistances(bind, input, state.row, count);
	for (idx_t c = 0; c < reader.output_count; c++) {
		output.data[c].Reference(ranker.fetched.data[c]);
	}
	output.data[reader.distance_slot.GetIndex()].Reference(ranker.distances.data[0]);
	for (idx_t i = 0; i < reader.passthrough.size(); i++) {
		ReferenceRow(output.data[reader.output_count + i], count, input.data[1 + reader.passthrough[i]], state.row,
		             input.size());
	}
	SetChunkSize(output, count);
	return count;
}

//! The exact top-k form of the in-out scan: per input row, its k nearest rows by the SQL distance.
static OperatorResultType HNSWTopKInOutFunction(ExecutionContext &context, const HNSWScanBindData &bind,
                                                HNSWInOutState &state, DataChunk &input, DataChunk &output) {
	if (!state.ranker) {
		vector<LogicalType> types;
		for (idx_t c = 0; c < state.reader.output_count; c++) {
			types.push_back(output.data[c].GetType());
		}
		state.ranker = make_uniq<TopKRanker>(context.client, bind, state.column_indexes, state.projection_ids,
		                                     std::move(types), input.data[bind.query_column].GetType());
	}
	if (!state.chunk_started) {
		SearchChunk(context, bind, input, state);
		RankChunk(context, bind, input, state);
		state.chunk_started = true;
		state.row = 0;
		state.phase = HNSWInOutState::TopKPhase::RANK;
	}
	// Answers of consecutive rows share an output chunk: copied in, the outer columns a selection
	// of the input rows (one chunk per row would cost DuckDB's per-chunk work for every query).
	auto &ranker = *state.ranker;
	auto &reader = ranker.reader;
	auto table_columns = ranker.fetched_types.size();
	auto distance_slot = reader.distance_slot.GetIndex();
	auto read = ReadOutputs(bind, table_columns);
	idx_t filled = 0;
	SelectionVector outer_rows(STANDARD_VECTOR_SIZE);
	while (state.row < input.size()) {
		auto &answer = state.answers[state.row];
		if (state.phase == HNSWInOutState::TopKPhase::RANK && answer) {
			auto count = answer->size();
			if (filled + count > STANDARD_VECTOR_SIZE) {
				break; // this chunk is full: the row goes into the next
			}
			for (idx_t c = 0; c < table_columns; c++) {
				if (read[c]) {
					VectorOperations::Copy(answer->data[c], output.data[c], count, 0, filled);
				}
			}
			VectorOperations::Copy(answer->data[table_columns], output.data[distance_slot], count, 0, filled);
			for (idx_t i = 0; i < count; i++) {
				outer_rows.set_index(filled + i, state.row);
			}
			filled += count;
			answer.reset();
			state.phase = HNSWInOutState::TopKPhase::DONE;
		}
		if (state.phase == HNSWInOutState::TopKPhase::RANK) {
			StartRow(context, bind, input, state, reader);
			ranker.Rank(context.client, bind, input, state.row);
			if (ranker.single) {
				state.phase = HNSWInOutState::TopKPhase::EMIT_SELECTED;
			} else {
				ranker.StartChosen(bind);
				state.phase = HNSWInOutState::TopKPhase::FETCH_CHOSEN;
			}
		}
		if (state.phase == HNSWInOutState::TopKPhase::EMIT_SELECTED) {
			auto count = ranker.selected_count;
			if (filled + count > STANDARD_VECTOR_SIZE) {
				break; // this chunk is full: the row goes into the next
			}
			for (idx_t c = 0; c < table_columns; c++) {
				if (read[c]) {
					VectorOperations::Copy(ranker.fetched.data[c], output.data[c], ranker.selected, count, 0, filled);
				}
			}
			VectorOperations::Copy(ranker.distances.data[0], output.data[distance_slot], ranker.selected, count, 0,
			                       filled);
			for (idx_t i = 0; i < count; i++) {
				outer_rows.set_index(filled + i, state.row);
			}
			filled += count;
			state.phase = HNSWInOutState::TopKPhase::DONE;
		}
		if (state.phase == HNSWInOutState::TopKPhase::FETCH_CHOSEN) {
			if (filled > 0) {
				break; // emit the rows copied so far first
			}
			if (EmitChosen(context, bind, input, state, output) > 0) {
				return OperatorResultType::HAVE_MORE_OUTPUT;
			}
		}
		state.row++;
		state.phase = HNSWInOutState::TopKPhase::RANK;
	}
	if (filled > 0) {
		for (idx_t c = 0; c < table_columns; c++) {
			if (!read[c]) {
				ReferenceConstant(output.data[c], Value(output.data[c].GetType()), filled);
			}
		}
		for (idx_t i = 0; i < reader.passthrough.size(); i++) {
			output.data[reader.output_count + i].Slice(input.data[1 + reader.passthrough[i]], outer_rows, filled);
		}
		SetChunkSize(output, filled);
		return OperatorResultType::HAVE_MORE_OUTPUT;
	}
	state.chunk_started = false;
	SetChunkSize(output, 0);
	return OperatorResultType::NEED_MORE_INPUT;
}

static OperatorResultType HNSWInOutFunction(ExecutionContext &context, TableFunctionInput &data, DataChunk &input,
                                            DataChunk &output) {
	auto &bind = data.bind_data->Cast<HNSWScanBindData>();
	auto &state = data.local_state->Cast<HNSWInOutState>();
	if (bind.distance) {
		return HNSWTopKInOutFunction(context, bind, state, input, output);
	}
	if (!state.chunk_started) {
		SearchChunk(context, bind, input, state);
		state.chunk_started = true;
		state.row = 0;
		state.row_started = false;
	}
	auto &reader = state.reader;
	while (state.row < input.size()) {
		if (!state.row_started) {
			StartRow(context, bind, input, state, state.reader);
			state.row_started = true;
		}
		auto count = reader.Next(context.client, bind, output);
		if (count > 0) {
			// The table's columns come first; this row's outer columns follow.
			for (idx_t i = 0; i < reader.passthrough.size(); i++) {
				ReferenceRow(output.data[reader.output_count + i], count, input.data[1 + reader.passthrough[i]],
				             state.row, input.size());
			}
			SetChunkSize(output, count);
			return OperatorResultType::HAVE_MORE_OUTPUT;
		}
		state.row++;
		state.row_started = false;
	}
	state.chunk_started = false;
	SetChunkSize(output, 0);
	return OperatorResultType::NEED_MORE_INPUT;
}

static virtual_column_map_t HNSWScanVirtualColumns(ClientContext &context, optional_ptr<FunctionData> bind_data) {
	return bind_data->Cast<HNSWScanBindData>().table.GetVirtualColumns();
}

static unique_ptr<NodeStatistics> HNSWScanCardinality(ClientContext &context, const FunctionData *bind_data) {
	auto &bind = bind_data->Cast<HNSWScanBindData>();
	return make_uniq<NodeStatistics>(bind.k, bind.k);
}

static InsertionOrderPreservingMap<string> HNSWScanToString(TableFunctionToStringInput &input) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	InsertionOrderPreservingMap<string> result;
	// The in-out form shows as INOUT_FUNCTION: name the scan so EXPLAIN shows it either way.
	result["Function"] = "HNSW_INDEX_SCAN";
	result["Table"] = NameText(bind.table.name);
	result["HNSW Index"] = bind.index_name;
	result["Limit"] = to_string(bind.k);
	if (bind.filtered) {
		result["Filter"] = bind.predicate_text;
	}
	return result;
}

//! EXPLAIN ANALYZE: the strategy a filtered search chose and how many rows matched.
static void HNSWScanMetrics(TableFunctionGetMetricsInput &input) {
	if (!input.global_state) {
		return;
	}
	auto &reader = input.global_state->Cast<HNSWScanState>().reader;
	if (!reader.filtered) {
		return;
	}
	auto &report = reader.report;
	string strategy = hnsw_rs_filter_strategy_name(report.strategy);
	if (report.fell_back) {
		strategy += " (fell back to exact)";
	}
	input.operator_metrics.AddExtraInfo("Strategy", strategy);
	input.operator_metrics.AddExtraInfo("Matching Rows", to_string(report.matches));
	input.operator_metrics.AddExtraInfo("Visited", to_string(report.visited));
}

static TableFunction BaseScanFunction() {
	TableFunction scan("hnsw_index_scan", {}, nullptr);
	scan.projection_pushdown = true;
	scan.filter_pushdown = false;
	scan.filter_prune = false;
	scan.get_virtual_columns = HNSWScanVirtualColumns;
	scan.cardinality = HNSWScanCardinality;
	scan.to_string = HNSWScanToString;
	return scan;
}

TableFunction GetHNSWIndexScanFunction() {
	auto scan = BaseScanFunction();
	scan.function = HNSWScanFunction;
	scan.init_global = HNSWScanInit;
	SetScanMetrics<HNSWScanMetrics>(scan);
	return scan;
}

TableFunction GetHNSWIndexScanInOutFunction() {
	auto scan = BaseScanFunction();
	scan.in_out_function = HNSWInOutFunction;
	scan.init_local = HNSWInOutInit;
	return scan;
}

} // namespace hnsw
} // namespace duckdb
