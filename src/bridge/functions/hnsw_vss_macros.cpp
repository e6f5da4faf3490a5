// vss_join / vss_match: the table macros of the vss extension, with its result shape, written as
// a LATERAL top-k join and a correlated min_by so that the top-k rewrite answers them from an
// HNSW index on the right column (exact search where there is none):
//   vss_join(left_table, right_table, left_col, right_col, k [, metric := 'l2sq'])
//     one row per (left row, match): score, left_tbl (the left row), right_tbl (the right row)
//   vss_match(right_table, left_col, right_col, k [, metric := 'l2sq']), used laterally
//     one row per left row: matches, a list of k {score, row} structs, best first
// score is the distance for l2sq and the similarity for cosine and ip, as in vss; matches are
// ordered by the metric's distance (most similar first).
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"

#include "duckdb/function/table_macro_function.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/parser/expression/columnref_expression.hpp"
#include "duckdb/parser/parsed_data/create_macro_info.hpp"

namespace duckdb {
namespace hnsw {

//! The score a metric reports for the pair (right_col, `left`): the distance for l2sq, the
//! similarity for cosine and ip, as in vss; an unknown metric is an error naming it.
static string Score(const string &macro, const string &left) {
	return "CASE WHEN metric IN ('l2sq', 'l2') THEN array_distance(right_col, " + left +
	       ") WHEN metric IN ('cosine', 'cos') THEN array_cosine_similarity(right_col, " + left +
	       ") WHEN metric = 'ip' THEN array_inner_product(right_col, " + left + ") ELSE error('" + macro +
	       ": unknown metric ''' || metric || ''' (expected l2sq, cosine or ip)') END";
}

//! The distance that orders the matches: the form the top-k rewrite recognises once DuckDB folds
//! the CASE over the constant metric.
static string Distance(const string &left) {
	return "CASE WHEN metric IN ('l2sq', 'l2') THEN array_distance(right_col, " + left +
	       ") WHEN metric IN ('cosine', 'cos') THEN array_cosine_distance(right_col, " + left +
	       ") WHEN metric = 'ip' THEN array_negative_inner_product(right_col, " + left + ") END";
}

//! vss_join: the left row and vector get names of their own in the left subquery (where
//! left_col can only mean the left table's column), so left_col and right_col may share a name.
static string VssJoinSql() {
	const string left = "l.hnsw_left_vector";
	return "SELECT hit.score, l.hnsw_left_row AS left_tbl, hit.right_tbl "
	       "FROM (SELECT lt AS hnsw_left_row, left_col AS hnsw_left_vector "
	       "FROM query_table(left_table::VARCHAR) AS lt) AS l, "
	       "LATERAL (SELECT " +
	       Score("vss_join", left) + " AS score, r AS right_tbl FROM query_table(right_table::VARCHAR) AS r ORDER BY " +
	       Distance(left) + " LIMIT k) AS hit";
}

//! vss_match: used laterally, left_col names the caller's column (qualify it if the right table
//! has a column of the same name).
static string VssMatchSql() {
	return "SELECT min_by({'score': " + Score("vss_match", "left_col") + ", 'row': r}, " + Distance("left_col") +
	       ", k) AS matches FROM query_table(right_table::VARCHAR) AS r";
}

//! Registers a table macro with positional parameters and `metric` defaulting to 'l2sq'.
static void RegisterTableMacro(ExtensionLoader &loader, const string &name, const string &sql,
                               const vector<string> &parameters) {
	auto macro = make_uniq<TableMacroFunction>(ParseSelectNode(sql));
	for (auto &parameter : parameters) {
		macro->parameters.push_back(make_uniq<ColumnRefExpression>(Identifier(parameter)));
	}
	macro->parameters.push_back(make_uniq<ColumnRefExpression>(Identifier("metric")));
	macro->default_parameters[Identifier("metric")] = ParsedConstant(Value("l2sq"));
	CreateMacroInfo info(CatalogType::TABLE_MACRO_ENTRY);
	SetMacroName(info, name);
	info.temporary = true;
	info.internal = true;
	info.macros.push_back(std::move(macro));
	loader.RegisterFunction(info);
}

void RegisterVssMacros(ExtensionLoader &loader) {
	RegisterTableMacro(loader, "vss_join", VssJoinSql(), {"left_table", "right_table", "left_col", "right_col", "k"});
	RegisterTableMacro(loader, "vss_match", VssMatchSql(), {"right_table", "left_col", "right_col", "k"});
}

} // namespace hnsw
} // namespace duckdb
