"Tests of crossmodal.evaluate.continuation: NDCG@100/AP@100 by hand and against scikit-learn, the search indexes, the task, pooling, baselines."
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, ndcg_score

import crossmodal.evaluate.continuation as cont
from crossmodal.evaluate.continuation import (average_precision_at_k, binary_ndcg_ap, continuation_scores, continuation_task,
                                              continue_playlists, genre_histogram_scores, genre_matrix, ndcg_at_k,
                                              nearest_items, pool_neighbours, popularity_rankings, random_expectation,
                                              random_rankings, score_rankings, summarise)

DISCOUNTS = 1 / np.log2(np.arange(2, 1002))


# --- metrics -----------------------------------------------------------------------------------------------------------
def test_hand_computed_small_playlist():
    # |G| = 4 < 100: ranking (a, x, b, y)
    assert ndcg_at_k(['a', 'x', 'b', 'y'], {'a', 'b', 'c', 'd'}) == pytest.approx(1.5 / DISCOUNTS[:4].sum())
    assert average_precision_at_k(['a', 'x', 'b', 'y'], {'a', 'b', 'c', 'd'}) == pytest.approx(5 / 12)
    assert average_precision_at_k(['a', 'x', 'b', 'y'], {'a', 'b', 'c', 'd'}, normaliser='retrieved') == pytest.approx(5 / 6)


def test_ideal_dcg_has_at_most_100_terms():
    held = set(range(250))                                   # |G| = 250 > 100
    assert ndcg_at_k(range(100), held) == pytest.approx(1.0)
    assert average_precision_at_k(range(100), held) == pytest.approx(1.0)
    every_other = [i if i % 2 == 0 else 1000 + i for i in range(100)]
    assert ndcg_at_k(every_other, held) == pytest.approx(DISCOUNTS[:100:2].sum() / DISCOUNTS[:100].sum())
    assert average_precision_at_k(every_other, held) == pytest.approx(sum((j + 1) / (2 * j + 1) for j in range(50)) / 100)


def test_perfect_and_empty():
    assert ndcg_at_k([3, 1, 2], {1, 2, 3}) == 1.0 and average_precision_at_k([3, 1, 2], {1, 2, 3}) == 1.0
    assert ndcg_at_k([7, 8], {1}) == 0.0 and average_precision_at_k([7, 8], {1}) == 0.0
    assert ndcg_at_k([], {1}) == 0.0


@pytest.mark.parametrize('n_test,n_held,seed', [(300, 20, 0), (400, 150, 1), (120, 119, 2), (150, 1, 3)])
def test_ndcg_equals_sklearn_given_all_test_tracks(n_test, n_held, seed):
    rng = np.random.default_rng(seed)
    held = set(rng.choice(n_test, n_held, replace=False).tolist())
    ranked = rng.permutation(n_test)[:100].tolist()
    scores = np.zeros(n_test); scores[ranked] = np.arange(100, 0, -1)
    truth = [[t in held for t in range(n_test)]]
    assert ndcg_at_k(ranked, held) == pytest.approx(ndcg_score(truth, [scores], k=100), abs=1e-12)
    # only the 100 retrieved items: scikit-learn's ideal DCG ignores the held-out tracks that were missed
    inflated = ndcg_score([[t in held for t in ranked]], [np.arange(100, 0, -1)], k=100) if any(t in held for t in ranked) else 0
    assert inflated >= ndcg_at_k(ranked, held) - 1e-12


def test_ap_equals_sklearn_over_a_full_ranking():
    rng = np.random.default_rng(4)
    for _ in range(5):
        held = set(rng.choice(80, rng.integers(1, 40), replace=False).tolist())
        ranked = rng.permutation(80).tolist()
        scores = np.zeros(80); scores[ranked] = np.arange(80, 0, -1)
        assert average_precision_at_k(ranked, held, k=80) == pytest.approx(
            average_precision_score([t in held for t in range(80)], scores), abs=1e-12)


def test_vectorised_equals_one_by_one():
    rng = np.random.default_rng(5)
    hits = rng.random((50, 100)) < 0.2
    n_rel = hits.sum(1) + rng.integers(1, 200, 50)
    ndcg, ap = binary_ndcg_ap(hits, n_rel)
    for row in range(50):
        ranked = [i if hits[row, i] else -i - 1 for i in range(100)]
        relevant = set(np.flatnonzero(hits[row]).tolist()) | {10_000 + j for j in range(n_rel[row] - hits[row].sum())}
        assert ndcg[row] == pytest.approx(ndcg_at_k(ranked, relevant))
        assert ap[row] == pytest.approx(average_precision_at_k(ranked, relevant))


def test_metric_errors():
    with pytest.raises(ValueError, match="lists id 3 twice"): ndcg_at_k([3, 3], {3})
    with pytest.raises(ValueError, match='k must be a positive integer'): ndcg_at_k([3], {3}, k=0)
    with pytest.raises(ValueError, match='hits for'): binary_ndcg_ap(np.ones((1, 3), bool), [2])


# --- search ------------------------------------------------------------------------------------------------------------
def test_faiss_equals_numpy_and_annoy_recall():
    rng = np.random.default_rng(1)
    items, queries = rng.normal(size=(1000, 16)), rng.normal(size=(60, 16))
    exact_i, exact_s = nearest_items(queries, items, 10)
    faiss_i, faiss_s = nearest_items(queries, items, 10, index='faiss')
    np.testing.assert_array_equal(exact_i, faiss_i)
    np.testing.assert_allclose(exact_s, faiss_s, atol=1e-5)
    annoy_i, annoy_s = nearest_items(queries, items, 10, index='annoy', n_trees=50)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(annoy_i, exact_i)])
    assert recall >= 0.9                                    # 0.99 measured
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(annoy_s, np.take_along_axis(unit(queries) @ unit(items).T, annoy_i, 1), atol=1e-4)


def test_exact_ties_go_to_the_lower_index_and_chunks_agree():
    items = np.array([[1.0, 0], [2.0, 0], [0, 1.0], [1.0, 0]])   # rows 0, 1, 3 have the same direction
    idx, sim = nearest_items(np.array([[1.0, 0.0]]), items, 3)
    assert idx.tolist() == [[0, 1, 3]] and np.allclose(sim, 1)
    rng = np.random.default_rng(2)
    q, x = rng.normal(size=(37, 8)), rng.normal(size=(50, 8))
    whole = cont._exact_top_k(q / np.linalg.norm(q, axis=1, keepdims=True), x / np.linalg.norm(x, axis=1, keepdims=True), 5)
    blocked = cont._exact_top_k(q / np.linalg.norm(q, axis=1, keepdims=True), x / np.linalg.norm(x, axis=1, keepdims=True), 5, cells=200)
    np.testing.assert_array_equal(whole[0], blocked[0])


# --- the task ----------------------------------------------------------------------------------------------------------
def test_task_skips_and_counts(capsys):
    playlists = pd.DataFrame(dict(id=[1, 2, 3, 4], tracks=[['k1', 't1'], ['t1', 't2'], ['k1', 'k2'], []]))
    task = continuation_task(playlists, ['t1', 't2', 't1'], ['k1', 'k2', 't1', 't2'])
    assert 'skipped 2 with no held-out track, 1 with no known track' in capsys.readouterr().out
    assert task.table.id.tolist() == [1] and task.test_ids == ['t1', 't2']
    assert task.skipped == {'no held-out track': 2, 'no known track': 1} and len(task) == 1


def test_unknown_ids_name_the_playlist():
    playlists = pd.DataFrame(dict(id=['good', 'bad'], tracks=[['k1', 't1'], ['k1', '12', 't1']]))
    with pytest.raises(ValueError, match=r"playlist 'bad' names 1 track id\(s\) not in the catalogue: \['12'\]"):
        continuation_task(playlists, ['t1'], ['k1', 't1', 12], verbose=False)
    with pytest.raises(ValueError, match='lack column'):
        continuation_task(playlists.rename(columns={'tracks': 'songs'}), ['t1'], ['k1', 't1'], verbose=False)
    task = continuation_task(playlists.iloc[:1].rename(columns={'tracks': 'songs'}), ['t1'], ['k1', 't1'], tracks='songs', verbose=False)
    assert len(task) == 1


# --- pooling and continuation --------------------------------------------------------------------------------------------
def test_pooling_most_repeated_with_tie_breaks():
    neighbours = np.array([[1, 0, 2], [2, 0, 3]])
    sims = np.array([[0.6, 0.55, 0.5], [0.99, 0.98, 0.1]])
    assert pool_neighbours(neighbours, sims, 10).tolist() == [0, 2, 1, 3]           # 0: total 1.53 > 1.49
    assert pool_neighbours(neighbours, sims, 10, tie_break='rank').tolist() == [2, 0, 1, 3]   # 2 was first for a query
    assert pool_neighbours(np.array([[5, 6, 7], [6, 7, 8], [7, 8, 9]]), np.full((3, 3), 0.5), 2).tolist() == [7, 6]


def small_world(n_tracks=600, n_test=150, n_playlists=40, seed=7):
    rng = np.random.default_rng(seed)
    style = rng.integers(8, size=n_tracks)
    emb = rng.normal(size=(8, 16))[style] + 0.6 * rng.normal(size=(n_tracks, 16))
    ids = [f'x{i}' for i in range(n_tracks)]
    playlists = pd.DataFrame(dict(id=range(n_playlists), tracks=[
        [ids[i] for i in rng.choice(np.flatnonzero(style == p % 8), 15, replace=False)] for p in range(n_playlists)]))
    test = ids[n_tracks - n_test:]
    return playlists, ids, emb, style, continuation_task(playlists, test, ids, verbose=False)


def test_held_out_tracks_never_query(monkeypatch):
    playlists, ids, emb, _, task = small_world()
    seen = {}
    def spy(queries, items, k, *args):
        seen['queries'] = queries
        return nearest_items(queries, items, k, *args)
    monkeypatch.setattr(cont, 'nearest_items', spy)
    continue_playlists(task, emb, ids, k=20, per_query=20)
    test_rows = emb[[ids.index(t) for t in task.test_ids]]
    assert not (seen['queries'][:, None, :] == test_rows[None]).all(-1).any()
    assert len(seen['queries']) == len({t for known in task.table.known for t in known})   # each known track searched once


def test_continuation_beats_random_and_indexes_agree():
    playlists, ids, emb, style, task = small_world()
    exact = continue_playlists(task, emb, ids, k=20, per_query=20)
    assert all(len(r) == 20 and set(r) <= set(task.test_ids) for r in exact.values())
    assert continue_playlists(task, emb, ids, k=20, per_query=20, index='faiss') == exact
    annoy = continue_playlists(task, emb, ids, k=20, per_query=20, index='annoy', n_trees=20)
    assert annoy.settings['index'] == 'annoy' and annoy.settings['n_trees'] == 20 and exact.settings['n_trees'] is None
    scores = {name: summarise(continuation_scores(task, r, k=20)) for name, r in
              dict(exact=exact, annoy=annoy, random=random_rankings(task, k=20)).items()}
    assert scores['exact']['ndcg'] > 3 * random_expectation(task.table.n_held_out, 150, 20)[0].mean()
    assert abs(scores['annoy']['ndcg'] - scores['exact']['ndcg']) < 0.05
    assert scores['exact']['ndcg_low'] <= scores['exact']['ndcg'] <= scores['exact']['ndcg_high']


# --- baselines ---------------------------------------------------------------------------------------------------------
def test_random_baseline_matches_its_expectation():
    test = list(range(1, 301))
    rng = np.random.default_rng(0)
    playlists = pd.DataFrame(dict(id=range(500), tracks=[[0] + rng.choice(test, rng.integers(1, 200), replace=False).tolist()
                                                         for _ in range(500)]))
    task = continuation_task(playlists, test, [0] + test, verbose=False)
    rankings = random_rankings(task, k=100, seed=1)
    assert all(len(set(r)) == 100 for r in rankings.values())
    assert random_rankings(task, k=100, seed=1) == rankings and random_rankings(task, k=100, seed=2) != rankings
    scored = continuation_scores(task, rankings)
    expected_ndcg, expected_ap = random_expectation(task.table.n_held_out, len(test), 100)
    assert scored.ndcg.mean() == pytest.approx(expected_ndcg.mean(), abs=0.01)
    assert scored.ap.mean() == pytest.approx(expected_ap.mean(), abs=0.01)


def test_popularity_is_leave_one_playlist_out():
    playlists, ids, _, _, task = small_world(n_playlists=60, seed=3)
    popular = popularity_rankings(task, playlists, k=15)
    for pid, held in zip(task.table.id, task.table.held_out):
        others = Counter(t for p, tracks in zip(playlists.id, playlists.tracks) if p != pid for t in set(tracks))
        assert popular[pid] == sorted(task.test_ids, key=lambda t: (-others.get(t, 0), task.test_ids.index(t)))[:15]


def test_score_rankings_and_genre_oracle():
    vocab = ['jazz', 'pop', 'rock']
    scores = genre_histogram_scores(genre_matrix([['rock'], ['rock', 'pop']], vocab), genre_matrix([['pop'], ['rock'], []], vocab))
    np.testing.assert_allclose(scores, [0.25, 0.75, 0.0])
    playlists, ids, emb, style, task = small_world()
    oracle = score_rankings(task, lambda known, test: genre_histogram_scores([[style[ids.index(t)]] for t in known],
                                                                            [[style[ids.index(t)]] for t in test]), k=20)
    assert summarise(continuation_scores(task, oracle, k=20))['ndcg'] > 0.3
    with pytest.raises(ValueError, match='finite scores, one per test id'):
        score_rankings(task, lambda known, test: np.full(len(test), np.nan))
