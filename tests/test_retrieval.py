"Tests of crossmodal.evaluate.retrieval: NDCG@k against scikit-learn, ties, bad input, baselines, the grid and the hand-over file."
import json, os, warnings

os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from crossmodal.core import Profile, get_profile
from crossmodal.neighbours import cosine_similarities

from crossmodal.evaluate.retrieval import (DIRECTIONS, SELECTION_FILE, best_pair, chosen_pair, crossmodal_ndcg,
                                           evaluate_translated, evaluate_untranslated, ndcg_at_k, ndcg_scores, pair_relevance,
                                           random_baseline, random_ndcg, retrieval_ndcg, selection_grid, untranslated_pair,
                                           write_selection)


def grid_of(profile):
    "The selection grid's embedder names of a profile, as the experiment passes them."
    P = get_profile(profile)
    return P.grid_audio_embedders, P.grid_image_embedders


@pytest.mark.parametrize('n_queries,n_items,k,seed', [(20, 100, 30, 0), (5, 30, 30, 1), (50, 40, 10, 2), (8, 9, 1, 3)])
def test_matches_sklearn_without_ties(n_queries, n_items, k, seed):
    rng = np.random.default_rng(seed)
    relevance = rng.integers(0, 22, size=(n_queries, n_items)).astype(float)
    scores = rng.normal(size=(n_queries, n_items))
    ours = ndcg_scores(relevance, scores, k, chunk_size=7)
    theirs = [ndcg_score(relevance[[q]], scores[[q]], k=k) for q in range(n_queries)]
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert abs(ndcg_at_k(relevance, scores, k) - ndcg_score(relevance, scores, k=k)) < 1e-12
    np.testing.assert_allclose(ndcg_scores(relevance, scores, k, ties='ignore'), ours, atol=1e-12)


@pytest.mark.parametrize('k', [1, 2, 5, 30, 60])
def test_ties_averaged_like_sklearn(k):
    rng = np.random.default_rng(k)
    relevance = rng.integers(0, 5, size=(40, 60)).astype(float)
    scores = rng.integers(0, 6, size=(40, 60)).astype(np.float32)   # many ties, also across the cut-off
    theirs = [ndcg_score(relevance[[q]], scores[[q]], k=k) for q in range(40)]
    np.testing.assert_allclose(ndcg_scores(relevance, scores, k), theirs, atol=1e-12)


def test_tie_straddling_cutoff_by_hand():
    # items 0 and 2 tie at the top; k=1 keeps one of them: the expected gain is their mean (10 + 5) / 2
    assert ndcg_at_k([[10, 0, 5, 1]], [[1, 0, 1, 0]], k=1) == pytest.approx(0.75)
    # with ties ignored the order is arbitrary, so only the tie-free value is pinned
    assert ndcg_at_k([[10, 0, 5, 1]], [[1, 0, 0.5, 0]], k=1, ties='ignore') == pytest.approx(1.0)


def test_integer_relevance_and_float32_scores():
    rng = np.random.default_rng(5)
    relevance = rng.integers(0, 22, size=(30, 50)).astype(np.int8)
    scores = rng.normal(size=(30, 50)).astype(np.float32)
    np.testing.assert_allclose(ndcg_scores(relevance, scores, 30),
                               [ndcg_score(relevance[[q]].astype(float), scores[[q]], k=30) for q in range(30)], atol=1e-12)


def test_retrieval_from_embeddings_equals_score_matrix():
    rng = np.random.default_rng(6)
    q, i = rng.normal(size=(33, 16)), rng.normal(size=(45, 16))
    relevance = rng.integers(0, 22, size=(33, 45)).astype(np.int8)
    np.testing.assert_allclose(retrieval_ndcg(q, i, relevance, chunk_size=5), ndcg_scores(relevance, cosine_similarities(q, i)),
                               atol=1e-6)


def test_random_baseline_is_exact():
    rng = np.random.default_rng(7)
    relevance = rng.integers(0, 22, size=(20, 50)).astype(float)
    exact = random_ndcg(relevance, 10)
    np.testing.assert_allclose(exact, ndcg_scores(relevance, np.zeros((20, 50)), 10), atol=1e-12)   # one tie group
    by_seed = np.mean([ndcg_scores(relevance, np.random.default_rng(s).random((20, 50)), 10) for s in range(300)], axis=0)
    np.testing.assert_allclose(by_seed, exact, atol=0.03)
    both = random_baseline(relevance[:, :20].astype(np.int8), 10)
    assert set(both) == set(DIRECTIONS)


def test_bad_input_messages():
    with pytest.raises(ValueError, match='one row per query'): ndcg_scores(np.ones((3, 5)), np.ones((3, 4)))
    with pytest.raises(ValueError, match='query 1 contain NaN'):
        ndcg_scores(np.ones((2, 3)), [[1, 2, 3], [np.nan, 0, 1]], k=2)
    with pytest.raises(ValueError, match='negative'): ndcg_scores([[1, -2, 3]], [[1, 2, 3]], k=2)
    with pytest.raises(ValueError, match='at least 2 items'): ndcg_scores([[1]], [[1]], k=1)
    with pytest.raises(ValueError, match='positive integer'): ndcg_scores(np.ones((2, 3)), np.ones((2, 3)), k=1.5)
    rng = np.random.default_rng(0)
    q, i = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match='4 queries and 5 items'): retrieval_ndcg(q, i, np.ones((5, 4)))
    with pytest.raises(ValueError, match='project both'): retrieval_ndcg(q, i[:, :2], np.ones((4, 5)))
    with pytest.raises(ValueError, match='not finite'): retrieval_ndcg(np.full((4, 3), np.nan), i, np.ones((4, 5)), k=2)
    with pytest.raises(ValueError, match='4 audio rows but 5'): crossmodal_ndcg(q, i, np.ones((4, 5)))


def test_k_larger_than_items_is_clipped_with_warning():
    rng = np.random.default_rng(1)
    relevance, scores = rng.integers(0, 22, (6, 10)).astype(float), rng.normal(size=(6, 10))
    with pytest.warns(UserWarning, match='using k=10'):
        ours = ndcg_at_k(relevance, scores, k=30)
    assert ours == pytest.approx(ndcg_score(relevance, scores, k=30), abs=1e-12)


def test_pair_relevance_uses_ontology():
    from crossmodal.ontology import AudioSetOntology
    onto = AudioSetOntology()
    audio = pd.DataFrame({'id': ['a0', 'a1'], 'ontology_ids': ['/m/07y_7', '/m/026t6;/m/02hnl']})
    images = pd.DataFrame({'id': ['i0', 'i1'], 'ontology_ids': ['/m/07y_7', '/m/02hnl']})
    rows = pd.DataFrame({'audio_id': ['a0', 'a1'], 'image_id': ['i0', 'i1']})
    rel = pair_relevance(onto, rows, audio, images)
    assert rel.dtype == np.int8 and rel.shape == (2, 2)
    assert rel[0, 0] == 21 and rel[1, 1] == 21 and rel[0, 1] == 21 - onto.distance('/m/07y_7', '/m/02hnl')
    with pytest.raises(KeyError, match="audio id 'zz'"):
        pair_relevance(onto, rows.assign(audio_id=['a0', 'zz']), audio, images)
    with pytest.raises(ValueError, match='ontology_ids'):
        pair_relevance(onto, rows, audio.drop(columns='ontology_ids'), images)


AVAILABLE = pd.DataFrame({'name': ['mfcc', 'MTT_musicnn', 'MTT_vgg', 'hog_colour', 'pictonet', 'openl3_audio_512'],
                          'dim': [40, 200, 256, 1828, 256, 512], 'available': [True, True, True, True, True, False],
                          'why_not': [None, None, None, None, None, 'weights missing']})


def test_selection_grid_and_untranslated_pair():
    grid = selection_grid(*grid_of('studio'), AVAILABLE, verbose=False)
    assert set(grid.audio) == {'mfcc', 'MTT_musicnn', 'MTT_vgg'} and set(grid.image) == {'pictonet', 'hog_colour'}
    assert len(grid) == 6
    base = untranslated_pair(grid, AVAILABLE, get_profile('studio').untranslated_pair)
    assert base['method'] == 'raw' and (base['audio'], base['image'], base['dim']) == ('MTT_vgg', 'pictonet', 256)
    no_equal = selection_grid(*grid_of('tiny'), AVAILABLE[AVAILABLE.name != 'pictonet'], verbose=False)
    base = untranslated_pair(no_equal, AVAILABLE)
    assert base['method'] == 'pca' and base['dim'] == 128 and base['audio'] == 'MTT_musicnn'
    assert untranslated_pair(no_equal, AVAILABLE, max_dim=32)['dim'] == 32
    with pytest.raises(RuntimeError, match='no audio embedder of the grid'):
        selection_grid(*grid_of('paper'), AVAILABLE, verbose=False)
    custom = Profile('custom', grid_audio_embedders=('mfcc',), grid_image_embedders=('hog_colour', 'pictonet'))
    assert len(selection_grid(*grid_of(custom), AVAILABLE, verbose=False)) == 2   # any profile names its own grid


def test_the_grid_takes_its_names_not_a_profile(capsys):
    "selection_grid reads only the names it is given; the ones it cannot use are printed with the reason."
    grid = selection_grid(('mfcc', 'vggish'), ('hog_colour',), AVAILABLE)
    assert grid[['audio', 'image']].values.tolist() == [['mfcc', 'hog_colour']]
    assert 'audio vggish: not registered' in capsys.readouterr().out


def test_the_papers_untranslated_pair_is_used_when_available():
    grid = selection_grid(*grid_of('tiny'), AVAILABLE, verbose=False)
    available = pd.concat([AVAILABLE, pd.DataFrame({'name': ['openl3_image_512'], 'dim': [512], 'available': [True],
                                                    'why_not': [None]})]).assign(available=True)
    base = untranslated_pair(grid, available, get_profile('paper').untranslated_pair)
    assert (base['audio'], base['image'], base['method'], base['dim']) == ('openl3_audio_512', 'openl3_image_512', 'raw', 512)
    assert untranslated_pair(grid, AVAILABLE, get_profile('paper').untranslated_pair)['audio'] != 'openl3_audio_512'   # weights missing


def test_evaluate_translated_grades_the_translated_spaces():
    from crossmodal.spaces.translation import train_translation, translate
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 120)
    centres_a, centres_i = rng.normal(size=(3, 10)) * 3, rng.normal(size=(3, 7)) * 3
    audio, image = centres_a[labels] + rng.normal(size=(120, 10)), centres_i[labels] + rng.normal(size=(120, 7))
    rel = np.where(labels[80:, None] == labels[None, 80:], 21, 15).astype(np.int8)
    model, _ = train_translation(audio[:80], image[:80], seed=0, batch_size=32, max_epochs=30, patience=30, progress=False)
    out = evaluate_translated(model, audio[80:], image[80:], rel, k=5)
    assert out == crossmodal_ndcg(translate(model, audio[80:], 'audio'), translate(model, image[80:], 'image'), rel, k=5)
    random = random_baseline(rel, 5)
    assert all(out[d] > random[d] for d in DIRECTIONS)   # paired clusters: translation beats a random ordering


def test_untranslated_evaluation_pca_and_raw():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 60)
    rel = np.where(labels[:, None] == labels[None, :], 21, 15).astype(np.int8)
    a_train, i_train = rng.normal(size=(200, 20)), rng.normal(size=(200, 30))
    a_eval, i_eval = rng.normal(size=(60, 20)), rng.normal(size=(60, 30))
    out = evaluate_untranslated(a_train, i_train, a_eval, i_eval, rel, 'pca', 10, k=10)
    assert set(out) == set(DIRECTIONS) and all(0 < v <= 1 for v in out.values())
    with pytest.raises(ValueError, match='untranslated spaces differ'):
        evaluate_untranslated(a_train, i_train, a_eval, i_eval, rel, 'raw', 20, k=10)


def test_best_pair_and_handover(tmp_path):
    table = pd.DataFrame(dict(audio=['a', 'a', 'b', 'b'], image=['x', 'x', 'y', 'y'], direction=list(DIRECTIONS) * 2,
                              ndcg=[0.9, 0.5, 0.6, 0.7]))
    choice = best_pair(table)
    assert choice == dict(audio='a', image='x', ndcg=pytest.approx(0.7))   # tie 0.70 vs 0.65: a; ties go to the first
    assert chosen_pair(tmp_path) is None and chosen_pair(None) is None
    path = write_selection(tmp_path, choice)
    assert path.name == SELECTION_FILE and json.loads(path.read_text())['image'] == 'x'
    assert chosen_pair(tmp_path)['audio'] == 'a'
    path.write_text('{"ndcg": 1}')
    with pytest.raises(ValueError, match="lacks 'audio'"): chosen_pair(tmp_path)
    with pytest.raises(ValueError, match='empty'): best_pair(table.iloc[:0])


def test_paper_scale_is_fast():
    "10k × 10k would take a few seconds; 3k × 3k here must finish well inside a second or two even on a busy machine."
    import time
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 18, 3000)
    rel = np.where(labels[:, None] == labels[None, :], 21, 15).astype(np.int8)
    q, i = rng.normal(size=(3000, 128)).astype(np.float32), rng.normal(size=(3000, 128)).astype(np.float32)
    t0 = time.perf_counter(); retrieval_ndcg(q, i, rel); seconds = time.perf_counter() - t0
    assert seconds < 10, f'3k × 3k took {seconds:.1f} s'


def test_intervals_separate_a_learned_space_from_a_random_one():
    "The 95% interval of NDCG above random excludes 0 for a class-clustered space and includes it for random embeddings."
    from crossmodal.evaluate.retrieval_metrics import retrieval_per_query, summarise_retrieval
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(5), 40)
    relevance = np.where(labels[:, None] == labels[None], 21, 17).astype(np.int8)
    centres = rng.normal(size=(5, 8)) * 3
    clustered = [centres[labels] + rng.normal(size=(200, 8)) for _ in range(2)]
    noise = [rng.normal(size=(200, 8)) for _ in range(2)]
    rows = pd.concat([retrieval_per_query(*clustered, relevance, labels, labels).assign(space='clustered', seed=0),
                      retrieval_per_query(*noise, relevance, labels, labels).assign(space='random', seed=0)])
    summary = summarise_retrieval(rows, ['space', 'direction']).set_index(['space', 'direction'])
    assert (summary.loc['clustered'].above_random_low > 0.5).all()
    assert ((summary.loc['random'].above_random_low < 0) & (summary.loc['random'].above_random_high > 0)).all()
    assert (summary.loc['random'].mAP < 0.35).all() and (summary.loc['clustered'].mAP > 0.8).all()   # chance mAP ≈ 0.2
