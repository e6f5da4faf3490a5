"""Graph quality: recall@10 against ef_search for this crate's core, hnswlib and FAISS HNSWFlat, built
on the same vectors with the same parameters (M=16, ef_construction=128), over a family of data
sets that are hard in different ways, three seeds each; plus distance computations per query
(ours and FAISS; hnswlib's Python binding does not count them) and single-thread QPS at the first
ef reaching recall 0.95. A benchmark, not a test: it asserts nothing.

Data sets (n rows, 500 queries; exact top-10 by brute force in float64):
  tight-sorted / tight-shuffled   60 tight clusters, 384-d, cosine, rows in cluster order or not;
                                  queries are stored rows plus noise larger than the clusters
  loose-128-l2                    16 loose clusters, 128-d, l2sq, queries drawn fresh
  many-small-64-l2                1000 clusters of 20 rows, 64-d, l2sq, stored rows plus noise
  gauss-32-l2                     uniform Gaussian 32-d, fresh queries (hard for every HNSW)
  gauss-768-ip                    Gaussian 768-d, inner product, fresh queries
  near-dup-384-cos                groups of 10 nearly identical rows, 384-d, cosine
  mixed-scale-128-l2              a quarter N(0,1) rows among U(-0.5, 0.5) rows; queries are the
                                  N(0,1) rows themselves
  copies-64-l2                    half the rows copies of 300 vectors; queries are the other rows
  fashion-mnist-784-l2            real images (Debian's dataset-fashion-mnist): a seeded sample of
                                  the training set, queries from the test set (skipped if absent)
  minilm-stdlib-384-cos           real text embeddings: all-MiniLM-L6-v2 of the standard library's
                                  docstrings from `make demo-embeddings`; 500 held-out rows are the
                                  queries (skipped if the demo has not run)

    make bench-quality   # or: .venv/bin/python -m scripts.bench.quality [--quick] [--only NAME,...]
"""
import argparse
import gzip
import importlib.metadata
import json
import pathlib
import subprocess
import tempfile
import time

import hnswlib
import numpy as np

from scripts.common import K, REPORTS, ROOT, command_line, machine, write_report

CORE_DRIVER = ["cargo", "bench", "--quiet", "--bench", "core", "--"]
EFS = [16, 32, 64, 128, 256]
SEEDS = [1, 2, 3]
QUERIES = 500
M, EF_CONSTRUCTION = 16, 128


def stored_plus_noise(data, rng, count, noise):
    """`count` stored rows, each moved by Gaussian noise of the given scale (not stored points)."""
    rows = data[rng.choice(len(data), count, replace=False)]
    return (rows + noise * rng.normal(size=rows.shape)).astype(np.float32)


def clusters(rng, n, dim, count, spread):
    """n rows around `count` N(0,1) centres with per-component spread, in cluster order."""
    centres = rng.normal(size=(count, dim))
    labels = np.repeat(np.arange(count), -(-n // count))[:n]
    return (centres[labels] + spread * rng.normal(size=(n, dim))).astype(np.float32)


def tight(n, seed, shuffle):
    rng = np.random.default_rng(seed)
    data = clusters(rng, n, 384, 60, 0.02)
    if shuffle:
        data = data[rng.permutation(n)]
    return data, stored_plus_noise(data, rng, QUERIES, 0.05), "cosine"


def loose(n, seed):
    rng = np.random.default_rng(seed)
    both = clusters(rng, n + QUERIES, 128, 16, 1.0)[rng.permutation(n + QUERIES)]
    return both[:n], both[n:], "l2sq"


def many_small(n, seed):
    rng = np.random.default_rng(seed)
    data = clusters(rng, n, 64, max(n // 20, 1), 0.1)[rng.permutation(n)]
    return data, stored_plus_noise(data, rng, QUERIES, 0.05), "l2sq"


def gauss(n, seed, dim, metric):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, dim)).astype(np.float32), rng.normal(size=(QUERIES, dim)).astype(np.float32),
            metric)


def near_dup(n, seed):
    rng = np.random.default_rng(seed)
    data = clusters(rng, n, 384, max(n // 10, 1), 1e-3)[rng.permutation(n)]
    return data, stored_plus_noise(data, rng, QUERIES, 0.01), "cosine"


def mixed_scale(n, seed):
    rng = np.random.default_rng(seed)
    wide = rng.normal(size=(n // 4, 128))
    narrow = rng.uniform(-0.5, 0.5, size=(n - n // 4, 128))
    data = np.concatenate([narrow, wide]).astype(np.float32)
    order = rng.permutation(n)
    data = data[order]
    wide_rows = np.flatnonzero(order >= n - n // 4)
    return data, data[rng.choice(wide_rows, QUERIES, replace=False)], "l2sq"


def copies(n, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(300, 64))
    data = np.concatenate([base[rng.integers(0, 300, n // 2)], rng.normal(size=(n - n // 2, 64))])
    order = rng.permutation(n)
    data = data[order].astype(np.float32)
    distinct = np.flatnonzero(order >= n // 2)
    return data, data[rng.choice(distinct, QUERIES, replace=False)], "l2sq"


FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist(n, seed):
    """A seeded sample of Fashion-MNIST's training images as 784-d vectors, test images as queries."""
    def images(name):
        with gzip.open(FASHION / f"{name}-images-idx3-ubyte.gz") as f:
            return np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32)
    rng = np.random.default_rng(seed)
    train, test = images("train"), images("t10k")
    return (train[rng.choice(len(train), min(n, len(train)), replace=False)],
            test[rng.choice(len(test), QUERIES, replace=False)], "l2sq")


MINILM = ROOT / "build" / "stdlib_docs.duckdb"


def minilm(n, seed):
    """The MiniLM docstring embeddings of the embeddings demo; a seeded 500 of them are the queries."""
    import duckdb

    con = duckdb.connect(str(MINILM), read_only=True)
    vectors = np.array(con.execute("SELECT embedding FROM docs ORDER BY doc_id").fetchnumpy()["embedding"].tolist(),
                       dtype=np.float32)
    con.close()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(vectors))
    return vectors[order[QUERIES:]][:n], vectors[order[:QUERIES]], "cosine"


DATASETS = {
    "tight-sorted": lambda n, s: tight(n, s, False),
    "tight-shuffled": lambda n, s: tight(n, s, True),
    "loose-128-l2": loose,
    "many-small-64-l2": many_small,
    "gauss-32-l2": lambda n, s: gauss(n, s, 32, "l2sq"),
    "gauss-768-ip": lambda n, s: gauss(n // 2, s, 768, "ip"),
    "near-dup-384-cos": near_dup,
    "mixed-scale-128-l2": mixed_scale,
    "copies-64-l2": copies,
    "fashion-mnist-784-l2": fashion_mnist,
    "minilm-stdlib-384-cos": minilm,
}


def exact(data, queries, metric):
    """The true top-k ids of each query under the metric, in float64."""
    x, q = data.astype(np.float64), queries.astype(np.float64)
    if metric == "cosine":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
    top = np.empty((len(q), K), dtype=np.int64)
    for start in range(0, len(q), 100):
        block = q[start : start + 100] @ x.T
        score = (x**2).sum(axis=1)[None, :] - 2 * block if metric == "l2sq" else -block
        nearest = np.argpartition(score, K - 1, axis=1)[:, :K]
        order = np.take_along_axis(score, nearest, axis=1).argsort(axis=1)
        top[start : start + 100] = np.take_along_axis(nearest, order, axis=1)
    return top


def recall(found, truth):
    """Mean recall@k of per-query id lists."""
    return float(np.mean([len(set(map(int, f[:K])) & set(map(int, t))) / K for f, t in zip(found, truth)]))


def ours(tmp, data, queries, truth, metric):
    """This crate's core through its driver (2-thread build, then a relink as the database does):
    {ef: (recall, distances per query, qps)}."""
    files = {}
    for name, arr in (("data", data), ("queries", queries), ("truth", truth.astype(np.uint32))):
        files[name] = tmp / f"{name}.bin"
        arr.tofile(files[name])
    cmd = [*CORE_DRIVER, "--data", str(files["data"]), "--queries", str(files["queries"]), "--truth",
           str(files["truth"]), "--dim", str(data.shape[1]), "--k", str(K), "--metric", metric, "--threads", "2",
           "--m", str(M), "--ef-construction", str(EF_CONSTRUCTION), "--ef", ",".join(map(str, EFS))]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["ef"]: (r["recall"], r["distances"], r["qps"]) for r in rows if r["kind"] == "search"}


def theirs_hnswlib(data, queries, truth, metric, seed):
    """hnswlib 0.8: {ef: (recall, None, qps)}."""
    space = {"l2sq": "l2", "cosine": "cosine", "ip": "ip"}[metric]
    index = hnswlib.Index(space=space, dim=data.shape[1])
    index.init_index(max_elements=len(data), M=M, ef_construction=EF_CONSTRUCTION, random_seed=seed)
    index.set_num_threads(2)
    index.add_items(data, np.arange(len(data)))
    index.set_num_threads(1)
    result = {}
    for ef in EFS:
        index.set_ef(ef)
        start = time.perf_counter()
        labels, _ = index.knn_query(queries, k=K)
        result[ef] = (recall(labels, truth), None, len(queries) / (time.perf_counter() - start))
    return result


def theirs_faiss(data, queries, truth, metric):
    """FAISS IndexHNSWFlat: {ef: (recall, distances per query, qps)}, or None without faiss-cpu."""
    try:
        import faiss
    except ImportError:
        return None
    x, q = data, queries
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    kind = faiss.METRIC_L2 if metric == "l2sq" else faiss.METRIC_INNER_PRODUCT
    index = faiss.IndexHNSWFlat(data.shape[1], M, kind)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    faiss.omp_set_num_threads(2)
    index.add(np.ascontiguousarray(x, dtype=np.float32))
    faiss.omp_set_num_threads(1)
    result = {}
    for ef in EFS:
        index.hnsw.efSearch = ef
        faiss.cvar.hnsw_stats.reset()
        start = time.perf_counter()
        _, labels = index.search(np.ascontiguousarray(q, dtype=np.float32), K)
        seconds = time.perf_counter() - start
        result[ef] = (recall(labels, truth), faiss.cvar.hnsw_stats.ndis / len(q), len(q) / seconds)
    return result


def first_at(curve, target=0.95):
    """(ef, qps) at the first ef whose recall reaches the target, or None."""
    for ef in EFS:
        if curve[ef][0] >= target:
            return ef, curve[ef][2]
    return None


def mean_curve(curves):
    """Per ef, the mean recall, distances and QPS over seeds."""
    if not curves or curves[0] is None:
        return None
    return {ef: tuple(None if curves[0][ef][i] is None else float(np.mean([c[ef][i] for c in curves]))
                      for i in range(3))
            for ef in EFS}


def report(args, results):
    """The markdown report: per data set, mean recall per ef for each engine, then the summary."""
    lines = [f"# Graph quality ({time.strftime('%Y-%m-%d')})", "",
             f"Machine: {machine()}; hnswlib {importlib.metadata.version('hnswlib')}"
             + (f", faiss-cpu {importlib.metadata.version('faiss-cpu')}" if results["has_faiss"] else
                ", no FAISS (pip install faiss-cpu)")
             + f". M={M}, ef_construction={EF_CONSTRUCTION}, k={K}, {args.rows} rows, {QUERIES} queries, seeds "
             f"{args.seeds}; builds on 2 threads, searches on 1. Recall is the mean over seeds; dist/q is the mean "
             f"number of distance computations per query. Command: `{command_line()}`.", "",
             "| data | ef | ours recall | hnswlib recall | FAISS recall | ours dist/q | FAISS dist/q |",
             "|---|---|---|---|---|---|---|"]
    summary = []
    for name in results["names"]:
        mine, hnsw_lib, fa = (mean_curve(results[e][name]) for e in ("ours", "hnswlib", "faiss"))
        for ef in EFS:
            fa_recall = f"{fa[ef][0]:.3f}" if fa else "-"
            fa_dist = f"{fa[ef][1]:.0f}" if fa else "-"
            lines.append(f"| {name} | {ef} | {mine[ef][0]:.3f} | {hnsw_lib[ef][0]:.3f} | {fa_recall} "
                         f"| {mine[ef][1]:.0f} | {fa_dist} |")
        below = [ef for ef in (32, 64, 128) if mine[ef][0] < hnsw_lib[ef][0] - 0.005]
        at_ours, at_theirs = first_at(mine), first_at(hnsw_lib)
        speed = (f"{at_ours[1]:.0f} (ef {at_ours[0]}) vs {at_theirs[1]:.0f} (ef {at_theirs[0]}) = "
                 f"{at_ours[1] / at_theirs[1]:.2f}x" if at_ours and at_theirs else
                 f"ours {'ef %d' % at_ours[0] if at_ours else 'never'}, hnswlib "
                 f"{'ef %d' % at_theirs[0] if at_theirs else 'never'} within ef {EFS[-1]}")
        summary.append(f"| {name} | {'yes' if not below else 'no (ef ' + ', '.join(map(str, below)) + ')'} "
                       f"| {speed} |")
    lines += ["", "Recall at ef 32, 64 and 128 at least hnswlib's mean minus 0.005, and single-thread QPS at the "
              "first ef reaching recall 0.95 (ours vs hnswlib):", "",
              "| data | recall >= hnswlib - 0.005 | QPS at recall 0.95 |", "|---|---|---|", *summary]
    return lines


def main():
    """Runs every data set and seed through the three engines and writes bench-results/quality.md."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true", help="5,000 rows, one seed")
    ap.add_argument("--only", help="comma-separated data set names")
    args = ap.parse_args()
    if args.quick:
        args.rows = 5_000
    args.seeds = SEEDS[:1] if args.quick else SEEDS
    names = args.only.split(",") if args.only else list(DATASETS)
    for name, path, how in (("fashion-mnist-784-l2", FASHION, "apt-get install dataset-fashion-mnist"),
                            ("minilm-stdlib-384-cos", MINILM, "make demo-embeddings")):
        if name in names and not path.exists():
            print(f"{path} is missing ({how}): skipping {name}")
            names.remove(name)
    results = {"names": names, "ours": {}, "hnswlib": {}, "faiss": {}}
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        for name in names:
            for engine in ("ours", "hnswlib", "faiss"):
                results[engine][name] = []
            for seed in args.seeds:
                data, queries, metric = DATASETS[name](args.rows, seed)
                truth = exact(data, queries, metric)
                results["ours"][name].append(ours(pathlib.Path(tmp), data, queries, truth, metric))
                results["hnswlib"][name].append(theirs_hnswlib(data, queries, truth, metric, seed))
                results["faiss"][name].append(theirs_faiss(data, queries, truth, metric))
                print(f"{name} seed {seed}: recall at ef 64 ours {results['ours'][name][-1][64][0]:.3f}, "
                      f"hnswlib {results['hnswlib'][name][-1][64][0]:.3f}", flush=True)
    results["has_faiss"] = all(c[0] is not None for c in results["faiss"].values())
    write_report(REPORTS / ("quality-quick.md" if args.quick else "quality.md"), report(args, results))


if __name__ == "__main__":
    main()
