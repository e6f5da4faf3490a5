-- The demo's learning data as a Parquet file: executions(task_id, ts, task_type, description,
-- embedding FLOAT[384]), clustered by task type and variant like real task embeddings.
-- Rows: SET VARIABLE executions_rows = <n> first (default 100,000). Writes executions.parquet
-- in the working directory. Run: duckdb -unsigned -f sql/00_executions_parquet.sql
-- (array_normalize comes from the extension).
LOAD hnsw;

COPY (
    SELECT i::INTEGER AS task_id,
           TIMESTAMP '2026-01-01' + INTERVAL (i * 37) SECOND AS ts,
           ['search', 'summarize', 'classify', 'extract', 'translate', 'plan', 'review', 'answer'][i % 8 + 1]
               AS task_type,
           ['search', 'summarize', 'classify', 'extract', 'translate', 'plan', 'review', 'answer'][i % 8 + 1]
               || ' ' || ['sensor feed', 'invoice', 'support ticket', 'contract', 'log file', 'paper',
                          'meeting notes', 'release'][(i // 8) % 8 + 1]
               || ' (variant ' || (i % 512) // 8 || ', run ' || i // 512 || ')' AS description,
           -- A direction per task type, a smaller offset per variant, a little noise per run.
           array_normalize(list_transform(range(384), lambda j:
               ((hash((i % 8) * 1000 + j) % 2000) / 1000.0 - 1) +
               0.6 * ((hash((i % 512) * 7 + j * 131 + 17) % 2000) / 1000.0 - 1) +
               0.2 * ((hash(i::BIGINT * 7919 + j) % 2000) / 1000.0 - 1))::FLOAT[384]) AS embedding
    FROM range(coalesce(getvariable('executions_rows'), 100000)) r(i)
) TO 'executions.parquet' (FORMAT parquet);
