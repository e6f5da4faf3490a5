// Recognising what the top-k rewrite can answer: a distance of the index's metric, in the
// direction that orders nearest first, over a plain scan of a column with a matching HNSW index.
#include "optimizer/hnsw_topn.hpp"
#include "catalog/hnsw_index_catalog.hpp"
#include "hnsw_compat.hpp"
#include "hnsw_vectors.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/function/table/table_scan.hpp"
#include "duckdb/planner/expression/bound_constant_expression.hpp"
#include "duckdb/storage/data_table.hpp"

namespace duckdb {
namespace hnsw {

//! Splits a two-argument array function into (column of the scan, other argument), either order.
static bool ColumnAndQuery(const BoundFunctionExpression &fn, TableIndex scan, DistanceOrder &out) {
	auto &children = Children(fn);
	if (children.size() != 2) {
		return false;
	}
	for (idx_t i = 0; i < 2; i++) {
		auto &a = *children[i];
		auto &b = *children[1 - i];
		if (a.GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF &&
		    BindingOf(a.Cast<BoundColumnRefExpression>()).table_index == scan) {
			out.column = &a.Cast<BoundColumnRefExpression>();
			out.query = &b;
			return true;
		}
	}
	return false;
}

//! Recognises the distance forms and their direction; false means "not an HNSW ordering".
bool MatchDistance(const Expression &expr, OrderType direction, TableIndex scan, DistanceOrder &out) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_FUNCTION) {
		return false;
	}
	auto &fn = expr.Cast<BoundFunctionExpression>();
	auto name = FunctionName(fn);
	bool asc = direction == OrderType::ASCENDING;
	if (name == "-" && asc && Children(fn).size() == 2) {
		// 1 - array_cosine_similarity(col, q)
		auto &one = *Children(fn)[0];
		auto &sim = *Children(fn)[1];
		if (one.GetExpressionClass() != ExpressionClass::BOUND_CONSTANT ||
		    sim.GetExpressionClass() != ExpressionClass::BOUND_FUNCTION) {
			return false;
		}
		auto one_value = ConstantValue(one.Cast<BoundConstantExpression>());
		if (one_value.IsNull() || one_value.DefaultCastAs(LogicalType::DOUBLE).GetValue<double>() != 1.0) {
			return false;
		}
		auto &inner = sim.Cast<BoundFunctionExpression>();
		if (FunctionName(inner) != "array_cosine_similarity") {
			return false;
		}
		out.metric = "cosine";
		return ColumnAndQuery(inner, scan, out);
	}
	if ((name == "array_distance" || name == "array_l2sq_distance") && asc) {
		out.metric = "l2sq";
	} else if (name == "array_cosine_distance" && asc) {
		out.metric = "cosine";
	} else if (name == "array_cosine_similarity" && !asc) {
		out.metric = "cosine";
	} else if (name == "array_negative_inner_product" && asc) {
		out.metric = "ip";
	} else if (name == "array_inner_product" && !asc) {
		out.metric = "ip";
	} else {
		return false;
	}
	return ColumnAndQuery(fn, scan, out);
}

//! A plain full scan of a DuckDB table (with pushed-down filters only if `allow_filters`), or null.
optional_ptr<TableCatalogEntry> PlainTableScan(LogicalOperator &op, bool allow_filters) {
	if (op.type != LogicalOperatorType::LOGICAL_GET) {
		return nullptr;
	}
	auto &get = op.Cast<LogicalGet>();
	if (ScanFunctionName(get) != "seq_scan" || !get.bind_data) {
		return nullptr;
	}
	if (!allow_filters && HasTableFilters(get.table_filters)) {
		return nullptr; // a WHERE filter where the caller cannot take one
	}
	if (get.extra_info.sample_options) {
		return nullptr; // TABLESAMPLE: the index would search rows outside the sample
	}
	for (auto &column : get.GetColumnIds()) {
		if ((column.IsVirtualColumn() && !column.IsRowIdColumn()) || column.HasType()) {
			return nullptr; // virtual columns other than rowid and struct-field pushdowns: not fetchable here
		}
	}
	auto &table = get.bind_data->Cast<TableScanBindData>().table;
	if (!table.IsDuckTable()) {
		return nullptr;
	}
	return &table;
}

//! Name of a bound HNSW index on the given storage column with the given metric, or "". Throws
//! (saying how to rebuild it) if that index's stored data cannot be read.
string FindMatchingIndex(ClientContext &context, TableCatalogEntry &table, const StorageIndex &column,
                         const string &metric, idx_t dims) {
	auto &storage = table.Cast<DuckTableEntry>().GetStorage();
	BindHNSWIndexes(context, *storage.GetDataTableInfo());
	// Handles are taken under the list's lock (entries in the list are never retired); the
	// pages are loaded after it is released.
	unique_ptr<IndexReadHandle<HNSWIndex>> found;
	string name;
	ForEachHNSWIndex(*storage.GetDataTableInfo(), [&](const IndexEntryRef &entry) {
		auto handle = entry->GetReadHandle<HNSWIndex>();
		auto &index = *handle.operator->();
		if (index.GetColumnIds().size() == 1 && index.GetColumnIds()[0] == column.GetPrimaryIndex() &&
		    index.Options().metric_name == metric && index.Dimensions() == dims) {
			name = NameText(entry->GetName());
			found = make_uniq<IndexReadHandle<HNSWIndex>>(std::move(handle));
		}
		return !found;
	});
	if (found) {
		auto &index = *found->operator->();
		// Loads stored pages on first use; throws the rebuild advice if it cannot.
		index.Graph();
		// Later appends (even through an Appender) then find the table.
		index.AttachTable(storage);
	}
	return name;
}

//! The search a matched distance asks for, as the scan's bind data: the indexed column of `get`,
//! the query (a constant's floats, or with `outer` the position of a FLOAT[n] column among its
//! outputs, set in `query_column`) and the matching index; null (plan unchanged) if one is missing.
unique_ptr<HNSWScanBindData> BindSearch(ClientContext &context, TableCatalogEntry &table, LogicalGet &get,
                                        const DistanceOrder &match, optional_ptr<LogicalOperator> outer, idx_t k,
                                        optional_idx &query_column) {
	auto &column = get.GetColumnIds()[BindingOf(*match.column).column_index];
	if (column.IsRowIdColumn() || column.IsVirtualColumn()) {
		return nullptr;
	}
	vector<float> query;
	idx_t dims;
	if (!outer) {
		if (match.query->GetExpressionClass() != ExpressionClass::BOUND_CONSTANT ||
		    !ValueToFloats(ConstantValue(match.query->Cast<BoundConstantExpression>()), query)) {
			return nullptr; // not a constant, or NULL: the exact plan handles it
		}
		dims = query.size();
	} else {
		auto &type = ReturnType(*match.query);
		if (match.query->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF ||
		    type.id() != LogicalTypeId::ARRAY || ArrayType::GetChildType(type).id() != LogicalTypeId::FLOAT) {
			return nullptr; // the query is not a FLOAT[n] column of the outer rows
		}
		query_column = BindingPosition(*outer, BindingOf(match.query->Cast<BoundColumnRefExpression>()));
		if (!query_column.IsValid()) {
			return nullptr;
		}
		dims = ArrayType::GetSize(type);
	}
	auto index_name = FindMatchingIndex(context, table, table.GetStorageIndex(column), match.metric, dims);
	if (index_name.empty()) {
		return nullptr; // no HNSW index with this column and metric
	}
	auto bind = make_uniq<HNSWScanBindData>(table, index_name, std::move(query), k);
	bind->vector_column = column.GetPrimaryIndex();
	return bind;
}

//! Replaces a plain table scan's function with HNSW_INDEX_SCAN.
void UseIndexScan(LogicalGet &get, const HNSWScanBindData &bind) {
	SetScanFunction(get, GetHNSWIndexScanFunction());
	get.bind_data = bind.Copy();
	get.estimated_cardinality = bind.k;
	get.has_estimated_cardinality = true;
}

} // namespace hnsw
} // namespace duckdb
