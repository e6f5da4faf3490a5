-- Which build parameters suit the learning database (sql/01_learning_database.sql): one index per
-- M x ef_construction on executions(embedding), each timed, measured (approx_memory_usage) and
-- benchmarked with hnsw_benchmark; the configurations no other beats on every count (the Pareto
-- front: recall up, p50 latency down, memory down, build time down); then hnsw_tune picks the
-- ef_search of the cheapest front configuration reaching recall 0.95, and PRAGMA hnsw_set_ef_search
-- stores it. Run:
--   .venv/bin/python -m scripts.run_sql learning.duckdb sql/04_tuning.sql
-- (or duckdb -unsigned learning.duckdb -f sql/04_tuning.sql with a DuckDB 2.0 CLI). The six sweep
-- indexes exist together until the end (about 6x the memory of executions_hnsw) and are dropped
-- there; the database keeps executions_hnsw unchanged, and the table tuning_results and the view
-- tuning_pareto for later reading. Takes seconds on a few thousand rows, minutes on 100,000.
LOAD hnsw;

-- The same kind of held-out-like queries as sql/03_benchmark.sql: 200 stored embeddings moved by a
-- little deterministic noise, so every configuration answers the same queries.
CREATE OR REPLACE TEMP TABLE tuning_queries AS
SELECT task_id,
       array_normalize(list_transform(embedding, lambda x, j:
           x + 0.02 * ((hash(task_id * 1009 + j) % 2000) / 1000.0 - 1))::FLOAT[384]) AS embedding
FROM executions
ORDER BY hash(task_id), task_id
LIMIT 200;

-- One row per configuration and ef_search. A configuration here is (M, ef_construction, ef_search):
-- ef_search is chosen too, and memory and build time are the index's, the same on each of its rows.
CREATE OR REPLACE TABLE tuning_results (
    index_name          VARCHAR,
    m                   INTEGER,
    ef_construction     INTEGER,
    build_seconds       DOUBLE,
    memory_bytes        BIGINT,
    ef                  BIGINT,
    recall              DOUBLE,
    distances_per_query DOUBLE,
    p50_ms              DOUBLE,
    p99_ms              DOUBLE,
    qps                 DOUBLE
);

-- Each block: the build time, measured in SQL. Every statement here runs in its own transaction
-- (autocommit), and now() is the start time of the statement's transaction; so now() in the INSERT
-- minus now() saved just before CREATE INDEX is the time CREATE INDEX took (plus a statement's
-- overhead, well under a millisecond). Then the index's memory and its benchmark rows.

-- M = 8, ef_construction = 32
SET VARIABLE build_start = now();
CREATE INDEX tuning_m8_efc32 ON executions USING HNSW (embedding)
    WITH (metric = 'cosine', m = 8, ef_construction = 32);
INSERT INTO tuning_results
SELECT 'tuning_m8_efc32', 8, 32, epoch(now() - getvariable('build_start')),
       (SELECT approx_memory_usage FROM pragma_hnsw_index_info() WHERE index_name = 'tuning_m8_efc32'),
       ef, recall, distances_per_query, p50_ms, p99_ms, qps
FROM hnsw_benchmark('tuning_m8_efc32', (SELECT embedding FROM tuning_queries), k := 10, ef := [16, 32, 64, 128]);

-- M = 8, ef_construction = 64
SET VARIABLE build_start = now();
CREATE INDEX tuning_m8_efc64 ON executions USING HNSW (embedding)
    WITH (metric = 'cosine', m = 8, ef_construction = 64);
INSERT INTO tuning_results
SELECT 'tuning_m8_efc64', 8, 64, epoch(now() - getvariable('build_start')),
       (SELECT approx_memory_usage FROM pragma_hnsw_index_info() WHERE index_name = 'tuning_m8_efc64'),
       ef, recall, distances_per_query, p50_ms, p99_ms, qps
FROM hnsw_benchmark('tuning_m8_efc64', (SELECT embedding FROM tuning_queries), k := 10, ef := [16, 32, 64, 128]);

-- M = 8, ef_construction = 128
SET VARIABLE build_start = now();
CREATE INDEX tuning_m8_efc128 ON executions USING HNSW (embedding)
    WITH (metric = 'cosine', m = 8, ef_construction = 128);
INSERT INTO tuning_results
SELECT 'tuning_m8_efc128', 8, 128, epoch(now() - getvariable('build_start')),
       (SELECT approx_memory_usage FROM pragma_hnsw_index_info() WHERE index_name = 'tuning_m8_efc128'),
       ef, recall, distances_per_query, p50_ms, p99_ms, qps
FROM hnsw_benchmark('tuning_m8_efc128', (SELECT embedding FROM tuning_queries), k := 10, ef := [16, 32, 64, 128]);

-- M = 16, ef_construction = 32
SET VARIABLE build_start = now();
CREATE INDEX tuning_m16_efc32 ON executions USING HNSW (embedding)
    WITH (metric = 'cosine', m = 16, ef_construction = 32);
INSERT INTO tuning_results
SELECT 'tuning_m16_efc32', 16, 32, epoch(now() - getvariable('build_start')),
       (SELECT approx_memory_usage FROM pragma_hnsw_index_info() WHERE index_name = 'tuning_m16_efc32'),
       ef, recall, distances_per_query, p50_ms, p99_ms, qps
FROM hnsw_benchmark('tuning_m16_efc32', (SELECT embedding FROM tuning_queries), k := 10, ef := [16, 32, 64, 128]);

-- M = 16, ef_construction = 64
SET VARIABLE build_start = now();
CREATE INDEX tuning_m16_efc64 ON executions USING HNSW (embedding)
    WITH (metric = 'cosine', m = 16, ef_construction = 64);
INSERT INTO tuning_results
SELECT 'tuning_m16_efc64', 16, 64, epoch(now() - getvariable('build_start')),
       (SELECT approx_memory_usage FROM pragma_hnsw_index_info() WHERE index_name = 'tuning_m16_efc64'),
       ef, recall, distances_per_query, p50_ms, p99_ms, qps
FROM hnsw_benchmark('tuning_m16_efc64', (SELECT embedding FROM tuning_queries), k := 10, ef := [16, 32, 64, 128]);

-- M = 16, ef_construction = 128
SET VARIABLE build_start = now();
CREATE INDEX tuning_m16_efc128 ON executions USING HNSW (embedding)
    WITH (metric = 'cosine', m = 16, ef_construction = 128);
INSERT INTO tuning_results
SELECT 'tuning_m16_efc128', 16, 128, epoch(now() - getvariable('build_start')),
       (SELECT approx_memory_usage FROM pragma_hnsw_index_info() WHERE index_name = 'tuning_m16_efc128'),
       ef, recall, distances_per_query, p50_ms, p99_ms, qps
FROM hnsw_benchmark('tuning_m16_efc128', (SELECT embedding FROM tuning_queries), k := 10, ef := [16, 32, 64, 128]);

FROM tuning_results ORDER BY m, ef_construction, ef;

-- The Pareto front: the rows no other row matches or beats on all four of recall (higher), p50
-- latency, memory and build time (lower) while beating it on at least one. A view, so it follows
-- tuning_results when the sweep is run again.
CREATE OR REPLACE VIEW tuning_pareto AS
SELECT r.*
FROM tuning_results r
WHERE NOT EXISTS (
    SELECT 1
    FROM tuning_results o
    WHERE o.recall >= r.recall AND o.p50_ms <= r.p50_ms AND o.memory_bytes <= r.memory_bytes
      AND o.build_seconds <= r.build_seconds
      AND (o.recall > r.recall OR o.p50_ms < r.p50_ms OR o.memory_bytes < r.memory_bytes
           OR o.build_seconds < r.build_seconds));

SELECT m, ef_construction, ef, round(recall, 3) AS recall, round(p50_ms, 3) AS p50_ms,
       round(memory_bytes / 2^20, 1) AS memory_mib, round(build_seconds, 2) AS build_seconds
FROM tuning_pareto
ORDER BY recall DESC, p50_ms;

-- The choice: the front's cheapest index (least memory, then fastest p50) among rows reaching
-- recall 0.95; if none does, the index of the row with the highest recall.
SET VARIABLE tuning_choice = (
    SELECT index_name
    FROM tuning_pareto
    ORDER BY recall >= 0.95 DESC,
             CASE WHEN recall >= 0.95 THEN memory_bytes END,
             CASE WHEN recall >= 0.95 THEN p50_ms END,
             recall DESC, p50_ms
    LIMIT 1);

-- hnsw_tune measures the chosen index's recall curve on the same queries and marks the smallest
-- ef_search reaching the target (no row chosen if none does: then the largest ef it measured).
CREATE OR REPLACE TEMP TABLE tuning_curve AS
FROM hnsw_tune(getvariable('tuning_choice'), (SELECT embedding FROM tuning_queries),
               target_recall := 0.95, k := 10);

FROM tuning_curve ORDER BY ef;

SET VARIABLE tuning_ef = (SELECT coalesce(min(ef) FILTER (WHERE chosen), max(ef)) FROM tuning_curve);

-- Stores that ef_search in the index (kept in the database file with it).
PRAGMA hnsw_set_ef_search(getvariable('tuning_choice'), getvariable('tuning_ef'));

SELECT index_name, m, ef_construction, ef_search, approx_memory_usage
FROM pragma_hnsw_index_info()
WHERE index_name = getvariable('tuning_choice');

-- The sweep indexes go; executions_hnsw stays as it was. To rebuild it with the choice:
--   DROP INDEX executions_hnsw;
--   CREATE INDEX executions_hnsw ON executions USING HNSW (embedding)
--       WITH (metric = 'cosine', m = <m>, ef_construction = <ef_construction>, ef_search = <ef_search>);
-- with the numbers of this row.
SELECT m, ef_construction, getvariable('tuning_ef') AS ef_search
FROM tuning_results
WHERE index_name = getvariable('tuning_choice')
LIMIT 1;

DROP INDEX tuning_m8_efc32;
DROP INDEX tuning_m8_efc64;
DROP INDEX tuning_m8_efc128;
DROP INDEX tuning_m16_efc32;
DROP INDEX tuning_m16_efc64;
DROP INDEX tuning_m16_efc128;

SELECT index_name, table_name FROM duckdb_indexes() WHERE table_name = 'executions' ORDER BY index_name;
