-- Search examples on the learning database (sql/01_learning_database.sql): each query is
-- answered by the index; EXPLAIN shows HNSW_INDEX_SCAN. Run:
--   duckdb -unsigned learning.duckdb -f sql/02_search.sql
LOAD hnsw;

-- The query vector: an existing execution's embedding (any FLOAT[384] works, e.g. a ? parameter).
SET VARIABLE q = (SELECT embedding FROM executions WHERE task_id = 42);

-- 1. Plain top-k: the 5 executions most similar to task 42.
SELECT task_id, description, array_cosine_distance(embedding, getvariable('q')::FLOAT[384]) AS distance
FROM executions
ORDER BY distance
LIMIT 5;

-- 2. Filtered: only 'review' tasks after the first day; still exactly 5 rows. (A bound that is a
-- subquery, e.g. ts > (SELECT max(ts) - INTERVAL 30 DAY FROM executions), keeps the exact plan:
-- compute it first, SET VARIABLE, and use getvariable.)
SELECT task_id, task_type, ts, array_cosine_distance(embedding, getvariable('q')::FLOAT[384]) AS distance
FROM executions
WHERE task_type = 'review' AND ts > TIMESTAMP '2026-01-02'
ORDER BY distance
LIMIT 5;

-- 3. Many queries in one statement: for 10 recent executions, their 3 nearest earlier ones.
SELECT q.task_id AS query_task, n.task_id AS similar_task, n.distance
FROM (SELECT task_id, embedding FROM executions ORDER BY ts DESC LIMIT 10) q,
     LATERAL (SELECT task_id, array_cosine_distance(e.embedding, q.embedding) AS distance
              FROM executions e ORDER BY distance LIMIT 4) n
WHERE n.task_id <> q.task_id
ORDER BY query_task, distance;

-- 4. The same as an aggregate: the 3 nearest task ids per task type's first execution.
SELECT q.task_type, min_by(e.task_id, array_cosine_distance(e.embedding, q.embedding), 3) AS nearest
FROM (SELECT task_type, any_value(embedding) AS embedding FROM executions WHERE task_id < 8 GROUP BY task_type) q,
     executions e
GROUP BY q.task_type
ORDER BY q.task_type;

-- 5. Recall of the index against exact search for 20 queries, in one statement: a second
-- ORDER BY key (task_id) keeps the exact plan, so the same join written twice gives both answers.
WITH queries AS (SELECT task_id AS qid, embedding AS qv FROM executions WHERE task_id % (SELECT count(*) // 20 FROM executions) = 7),
approx AS (
    SELECT qid, list(n.task_id) AS ids
    FROM queries, LATERAL (SELECT task_id FROM executions ORDER BY array_cosine_distance(embedding, qv) LIMIT 10) n
    GROUP BY qid),
exact AS (
    SELECT qid, list(n.task_id) AS ids
    FROM queries, LATERAL (SELECT task_id FROM executions ORDER BY array_cosine_distance(embedding, qv), task_id
                           LIMIT 10) n
    GROUP BY qid)
SELECT count(*) AS queries, avg(len(list_intersect(approx.ids, exact.ids)) / 10) AS recall_at_10
FROM approx JOIN exact USING (qid);
