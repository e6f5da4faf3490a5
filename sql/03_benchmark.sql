-- How recall and speed of the learning database's index (sql/01_learning_database.sql) change with
-- ef_search: hnsw_benchmark searches the index once per query and ef, and compares the answers with
-- exact search over the index's rows. Leaves the database file unchanged (TEMP tables only). Run:
--   .venv/bin/python -m scripts.run_sql learning.duckdb sql/03_benchmark.sql
-- (or duckdb -unsigned learning.duckdb -f sql/03_benchmark.sql with a DuckDB 2.0 CLI).
LOAD hnsw;

-- Queries like new executions: 200 stored embeddings (picked by a hash of task_id, so every task
-- type and variant can appear) moved by a little deterministic noise, about as far as two runs of
-- one variant are apart, and renormalized. Stored rows themselves would be too easy: each is its
-- own nearest neighbour. (Without queries of your own, (FROM hnsw_sample_queries('executions_hnsw', 200))
-- samples stored vectors and moves each toward a neighbour.)
CREATE OR REPLACE TEMP TABLE benchmark_queries AS
SELECT task_id,
       array_normalize(list_transform(embedding, lambda x, j:
           x + 0.02 * ((hash(task_id * 1009 + j) % 2000) / 1000.0 - 1))::FLOAT[384]) AS embedding
FROM executions
ORDER BY hash(task_id), task_id
LIMIT 200;

-- The sweep: per ef, recall@10 against exact search, distance computations per query, latency
-- percentiles (one query at a time) and queries per second; truth_ms is the time exact search took
-- for all queries together.
CREATE OR REPLACE TEMP TABLE benchmark AS
FROM hnsw_benchmark('executions_hnsw', (SELECT embedding FROM benchmark_queries), k := 10,
                    ef := [10, 16, 32, 64, 128, 256]);

FROM benchmark ORDER BY ef;

-- Per ef, what it buys: the share of rows a search compares against, the speed-up over exact search
-- (exact milliseconds per query / median index milliseconds), and which ef is the smallest reaching
-- recall 0.95.
SELECT ef,
       round(recall, 3) AS recall_at_10,
       round(distances_per_query / (SELECT count(*) FROM executions), 4) AS share_of_rows_compared,
       round(p50_ms, 3) AS p50_ms,
       round(p99_ms, 3) AS p99_ms,
       round(truth_ms / queries / nullif(p50_ms, 0), 1) AS speedup_over_exact,
       coalesce(ef = min(ef) FILTER (WHERE recall >= 0.95) OVER (), false) AS smallest_ef_for_095
FROM benchmark
ORDER BY ef;

-- The ef_search the index searches with now (its stored setting) next to the smallest measured ef
-- that reaches recall 0.95: PRAGMA hnsw_set_ef_search('executions_hnsw', <ef>) stores another
-- (sql/04_tuning.sql picks one with hnsw_tune).
SELECT i.ef_search AS stored_ef_search,
       (SELECT min(ef) FROM benchmark WHERE recall >= 0.95) AS smallest_ef_for_095,
       (SELECT round(max(recall), 3) FROM benchmark) AS best_recall
FROM pragma_hnsw_index_info() i
WHERE i.index_name = 'executions_hnsw';
