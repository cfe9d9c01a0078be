"""Benchmark (not a test): crossmodal's vectorised NDCG@30 vs scikit-learn's `ndcg_score`, same inputs, same machine.

Inputs look like the retrieval of nbs/06_embedding_selection: `n` queries × `n` items, 128-d random embeddings
(cosine scores, float32 as the translation model gives them) and integer ontology-style relevances 0…21 from
random class labels (`--classes` classes; same class 21, other classes one draw of 10…19 per class pair).

Timed, each on the same `--n` × `--n` case (default 2,000):
* ours: `crossmodal.evaluate.retrieval.ndcg_scores(relevance, scores, k)` (ties averaged, scikit-learn's default) and
  `retrieval_ndcg(queries, items, relevance, k)` (cosine computed chunk by chunk inside);
* scikit-learn, batch: `ndcg_score(relevance, scores, k=k)` (one call, ignore_ties=False: its per-row Python loop
  of `np.unique` tie averaging);
* scikit-learn, per query: `[ndcg_score(relevance[[q]], scores[[q]], k=k) for q in range(n)]` (the way a
  per-query evaluation loop calls it).
The values must agree (max |difference| reported). Then ours alone at the paper's size (`--paper-n`, 10,000 pairs:
both directions, cosine included); scikit-learn at that size is extrapolated from the small case (its cost is
linear in the number of queries times n log n per query; extrapolated ∝ n² log n, stated as such), or measured
with `--measure-sklearn-paper` (about 1.6 GB of float64 inputs).

    python bench/bench_ndcg.py [--n 2000] [--paper-n 10000] [--k 30] [--repeats 3]
Writes bench/results/ndcg.json and prints it.
"""
import argparse, datetime, json, math, os, platform, sys, time
from pathlib import Path

import numpy as np

os.environ.setdefault('HF_HUB_OFFLINE', '1')


def make_case(n:int, classes:int, dim:int=128, seed:int=0):
    "Random embeddings of `n` pairs and an ontology-like relevance matrix (int8)."
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    between = rng.integers(10, 20, (classes, classes)); between = np.minimum(between, between.T)
    np.fill_diagonal(between, 21)
    relevance = between[labels[:, None], labels[None, :]].astype(np.int8)
    queries = rng.normal(size=(n, dim)).astype(np.float32)
    items = rng.normal(size=(n, dim)).astype(np.float32)
    return queries, items, relevance


def best_of(fn, repeats:int):
    "Smallest wall time of `repeats` calls, and the last result."
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=2000, help='pairs of the comparison with scikit-learn')
    ap.add_argument('--paper-n', type=int, default=10000, help="pairs of the paper's cross-modal subset")
    ap.add_argument('--classes', type=int, default=18)
    ap.add_argument('--k', type=int, default=30)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--measure-sklearn-paper', action='store_true', help='also time scikit-learn at the paper size')
    ap.add_argument('--out', default=str(Path(__file__).parent / 'results' / 'ndcg.json'))
    args = ap.parse_args()

    import sklearn
    from sklearn.metrics import ndcg_score
    from crossmodal.evaluate.retrieval import ndcg_scores, retrieval_ndcg
    from crossmodal.neighbours import cosine_similarities

    k, n = args.k, args.n
    queries, items, relevance = make_case(n, args.classes)
    scores = cosine_similarities(queries, items)              # float32, as in the notebook
    relevance_f = relevance.astype(np.float64)

    ours_s, ours = best_of(lambda: ndcg_scores(relevance, scores, k), args.repeats)
    ours_emb_s, ours_emb = best_of(lambda: retrieval_ndcg(queries, items, relevance, k), args.repeats)
    batch_s, batch = best_of(lambda: ndcg_score(relevance_f, scores, k=k), 1)
    per_query_s, per_query = best_of(lambda: np.array([ndcg_score(relevance_f[[q]], scores[[q]], k=k) for q in range(n)]), 1)
    agree = dict(max_abs_diff_per_query=float(np.abs(ours - per_query).max()),
                 abs_diff_mean_vs_batch=float(abs(ours.mean() - batch)),
                 max_abs_diff_from_embeddings=float(np.abs(ours_emb - ours).max()))
    assert agree['max_abs_diff_per_query'] < 1e-9 and agree['abs_diff_mean_vs_batch'] < 1e-9, agree

    # the paper's size: 10k x 10k, both directions, cosine included
    pq, pi, prel = make_case(args.paper_n, args.classes, seed=1)
    def both_directions():
        return retrieval_ndcg(pq, pi, prel, k).mean(), retrieval_ndcg(pi, pq, prel.T, k).mean()
    paper_s, paper_vals = best_of(both_directions, max(1, args.repeats - 1))
    scale = (args.paper_n / n) ** 2 * math.log(args.paper_n) / math.log(n)
    sklearn_paper = dict(extrapolated_batch_seconds_both_directions=2 * batch_s * scale,
                         extrapolated_per_query_seconds_both_directions=2 * per_query_s * scale,
                         extrapolation='small-case time x (N/n)^2 x log N / log n, x2 directions')
    if args.measure_sklearn_paper:
        pscores = cosine_similarities(pq, pi)
        t0 = time.perf_counter(); ndcg_score(prel.astype(np.float64), pscores, k=k)
        sklearn_paper['measured_batch_seconds_one_direction'] = time.perf_counter() - t0

    report = dict(
        benchmark='NDCG@k: crossmodal.evaluate.retrieval (vectorised) vs sklearn.metrics.ndcg_score',
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(), python=sys.version.split()[0],
                     numpy=np.__version__, sklearn=sklearn.__version__,
                     load_average=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None),
        k=k, classes=args.classes,
        small_case=dict(n_queries=n, n_items=n,
                        ours_ndcg_scores_seconds=ours_s, ours_from_embeddings_seconds=ours_emb_s,
                        sklearn_batch_seconds=batch_s, sklearn_per_query_seconds=per_query_s,
                        speedup_vs_sklearn_batch=batch_s / ours_s, speedup_vs_sklearn_per_query=per_query_s / ours_s,
                        mean_ndcg=float(ours.mean()), agreement=agree),
        paper_size=dict(n_queries=args.paper_n, n_items=args.paper_n,
                        ours_seconds_both_directions_cosine_included=paper_s,
                        mean_ndcg=[float(v) for v in paper_vals], sklearn=sklearn_paper,
                        speedup_vs_sklearn_batch_extrapolated=sklearn_paper['extrapolated_batch_seconds_both_directions'] / paper_s),
        note='best of --repeats wall times for ours, one run for scikit-learn; shared 2-core machine, run under nice')
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + '\n')
    print(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
