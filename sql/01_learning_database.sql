-- The learning database from executions.parquet (sql/00_executions_parquet.sql makes one):
-- schema, bulk load, index, checkpoint. Run against the database file you keep:
--   duckdb -unsigned learning.duckdb -f sql/01_learning_database.sql
-- (after INSTALL hnsw FROM '<repository>' once; see README).
LOAD hnsw;

CREATE OR REPLACE TABLE executions (
    task_id     INTEGER PRIMARY KEY,
    ts          TIMESTAMP NOT NULL,
    task_type   VARCHAR NOT NULL,
    description VARCHAR,
    embedding   FLOAT[384] NOT NULL
);

-- Bulk load first, index second: one CREATE INDEX over all rows builds on every thread.
INSERT INTO executions SELECT task_id, ts, task_type, description, embedding FROM 'executions.parquet';

CREATE INDEX executions_hnsw ON executions USING HNSW (embedding)
    WITH (metric = 'cosine', m = 16, ef_construction = 128, ef_search = 64);

-- Writes the index into the file now, so the next session opens it without a rebuild.
CHECKPOINT;

SELECT index_name, count, dimensions, metric, levels, approx_memory_usage
FROM pragma_hnsw_index_info();
