"""Benchmark (not a test): the vectorised permutation null of `crossmodal.evaluate.probes` vs one draw at a time.

A permutation null re-assigns an encoder's embeddings to the terms of a triplet set at random and scores the fixed
triplets each time (`nbs/10_ontology_probes.ipynb`). Timed on the same inputs, same machine, same run:
* ours: `permutation_null(similarity, triplets, n_draws)` — the draws as chunks of one NumPy gather;
* per draw: `triplet_accuracy(similarity[np.ix_(p, p)], triplets)` for each permutation `p` (the same
  permutations), the way a loop over draws would be written.
Two sizes: the 686 corrected-rule TinySOL triplets over 14 terms, and 5,000 triplets (the notebook's subset for
larger sets) over 150 terms. The two must give identical accuracies (max |difference| reported).

    python bench/bench_permutation_null.py [--draws 1000] [--repeats 3]

Writes bench/results/permutation_null.json and prints it.
"""
import argparse, datetime, json, platform, time
from pathlib import Path

import numpy as np

from crossmodal.evaluate.probes import cosine_similarity, permutation_null, triplet_accuracy
from crossmodal.ontology import triplets_from_distances

def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); out = fn(); times.append(time.perf_counter() - start)
    return min(times), out

def case(n_terms, n_triplets, draws, repeats, seed=0):
    rng = np.random.default_rng(seed)
    positions = rng.standard_normal((n_terms, 2))
    dist = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    triplets = triplets_from_distances(dist)
    triplets = triplets if len(triplets) <= n_triplets else triplets[np.sort(rng.choice(len(triplets), n_triplets, replace=False))]
    sim = cosine_similarity(rng.standard_normal((n_terms, 384)))
    perms = np.argsort(np.random.default_rng(1).random((draws, n_terms)), axis=1)   # permutation_null's own draws for seed 1
    ours_s, ours = best_of(lambda: permutation_null(sim, triplets, draws, seed=1, max_triplets=len(triplets)), repeats)
    loop_s, loop = best_of(lambda: np.array([triplet_accuracy(sim[np.ix_(p, p)], triplets) for p in perms]), repeats)
    return dict(terms=n_terms, triplets=len(triplets), draws=draws, vectorised_s=round(ours_s, 4), per_draw_s=round(loop_s, 4),
                speedup=round(loop_s / ours_s, 2), max_abs_difference=float(np.abs(ours - loop).max()))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--draws', type=int, default=1000); ap.add_argument('--repeats', type=int, default=3)
    args = ap.parse_args()
    out = dict(date=datetime.date.today().isoformat(), machine=f"{platform.machine()}, {__import__('os').cpu_count()} cores",
               cases=[case(14, 686, args.draws, args.repeats), case(150, 5000, args.draws, args.repeats)])
    path = Path(__file__).parent / 'results' / 'permutation_null.json'
    path.write_text(json.dumps(out, indent=2) + '\n'); print(json.dumps(out, indent=2))
