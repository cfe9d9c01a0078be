"""Downstream protocols on frozen embeddings (Ferraro et al. 2021 §3.3): genre vote, tagging AUC, linear probes, tables.
Synthetic Gaussian blobs with known separability; every model tiny, one thread."""
import numpy as np
import pandas as pd
import pytest
import torch

from crossmodal.evaluate.downstream import (blob_chunks, genre_classification, linear_probe, macro_roc_auc,
                                            majority_vote, mean_sd, probe_splits, summarise_repeats, tag_matrices,
                                            tagging_auc, track_labels)

torch.set_num_threads(1)


def blob_tracks(n, seed, separation=6.0):
    "One mean-pooled row per track, tagged with its blob and, for even blobs, 'even'."
    x, _, y = blob_chunks(n, chunks=1, separation=separation, seed=seed)
    return x, [[f'blob{c}'] + (['even'] if c % 2 == 0 else []) for c in y]


@pytest.fixture(scope='module')
def genre_splits():
    return blob_chunks(80, seed=1, prefix='train'), blob_chunks(60, seed=2, prefix='test')


# --- genre classification -------------------------------------------------------------------------------------------

def test_majority_vote_beats_summed_probabilities_and_breaks_ties_by_them():
    track = np.array([7, 7, 7, 8, 8, 9, 9])
    p = np.array([[.4, .3, .3], [.4, .3, .3], [0, 0, 1],    # 7: two hesitant votes for 0, one sure vote for 2 -> 0
                  [.5, .4, .1], [.1, .3, .6],                # 8: 1-1 tie between 0 and 2; sums .6 vs .7 -> 2
                  [.2, .7, .1], [.45, .35, .2]])             # 9: 1-1 tie between 1 and 0; sums 1.05 vs .65 -> 1
    voted = majority_vote(track, p, np.array(['blues', 'jazz', 'rock']))
    assert voted.to_dict() == {7: 'blues', 8: 'rock', 9: 'jazz'}
    assert voted.index.name == 'track'
    summed = pd.DataFrame(p).groupby(track).sum().to_numpy().argmax(1)
    assert summed[0] == 2   # the argmax of summed probabilities would have said 'rock' for track 7


def test_a_track_with_two_labels_is_refused(genre_splits):
    (x, t, y), test = genre_splits
    y = y.copy(); y[1] = (y[0] + 1) % 4                      # train0's second chunk gets another genre
    with pytest.raises(ValueError, match="train track 'train0' has chunks labelled"):
        genre_classification(x, t, y, *test, repeats=1)
    with pytest.raises(ValueError, match='1 track\\(s\\) with more than one label'):
        track_labels(t, y)


def test_separable_genres_are_recognised_and_uninformative_ones_are_at_chance(genre_splits):
    (train, test) = genre_splits
    sep = genre_classification(*train, *test, repeats=2, hidden=32)
    assert (sep.accuracy >= 0.95).all() and (sep.chunk_accuracy >= 0.9).all()
    blank = [blob_chunks(80, separation=0, seed=1, prefix='train'), blob_chunks(60, separation=0, seed=2, prefix='test')]
    null = genre_classification(*blank[0], *blank[1], repeats=2, hidden=32)
    assert (null.accuracy <= 0.45).all(), null


def test_genre_repeats_differ_by_seed_and_each_is_reproducible():
    hard = [blob_chunks(40, separation=1.5, seed=s, prefix=p) for s, p in ((3, 'tr'), (4, 'te'))]
    a = genre_classification(*hard[0], *hard[1], repeats=3, hidden=16, max_iter=50, seed=11)
    b = genre_classification(*hard[0], *hard[1], repeats=3, hidden=16, max_iter=50, seed=11)
    pd.testing.assert_frame_equal(a, b)
    assert a.chunk_accuracy.nunique() > 1
    assert a.seed.tolist() == [11, 12, 13]


def test_genre_bad_splits_are_named(genre_splits):
    train, (x, t, y) = genre_splits
    with pytest.raises(ValueError, match='in both train and test'):
        genre_classification(*train, *train, repeats=1)
    with pytest.raises(ValueError, match='pass one row per chunk'):
        genre_classification(*train, x[:-1], t, y, repeats=1)


# --- auto-tagging ---------------------------------------------------------------------------------------------------

def test_separable_tags_reach_auc_near_one_and_uninformative_ones_near_half():
    splits = [blob_tracks(n, s) for n, s in ((200, 1), (80, 2), (120, 3))]
    good = tagging_auc(*splits[0], *splits[1], *splits[2], repeats=2, hidden=(16, 8), max_epochs=30, patience=5, verbose=False)
    assert (good.roc_auc >= 0.95).all(), good
    blank = [blob_tracks(n, s, separation=0) for n, s in ((200, 1), (80, 2), (120, 3))]
    null = tagging_auc(*blank[0], *blank[1], *blank[2], repeats=2, hidden=(16, 8), max_epochs=30, patience=5, verbose=False)
    assert null.roc_auc.between(0.35, 0.65).all(), null


def test_unscorable_and_unseen_tags_are_dropped_counted_and_printed(capsys):
    (xa, ta), (xb, tb), (xc, tc) = [blob_tracks(n, s) for n, s in ((120, 1), (40, 2), (60, 3))]
    keep = [i for i, t in enumerate(tc) if 'blob3' not in t]
    tc = [tc[i] + ['even'] + (['never-trained'] if i < 8 else []) for i in keep]   # 'even' in every test track
    table = tagging_auc(xa, ta, xb, tb, xc[keep], tc, repeats=1, hidden=(8, 8), max_epochs=5, patience=2)
    assert (table.tags_scored.item(), table.tags_dropped.item()) == (3, 2)
    assert table.attrs['dropped_tags'] == ['blob3', 'even']
    out = capsys.readouterr().out
    assert '2 not scored' in out and 'blob3, even' in out
    assert table.attrs['unseen_tags'] == {'never-trained': 6}       # 8 first originals, 2 of them blob3 (dropped)
    assert '6 uses of 1 tag(s) never seen in training' in out


def test_macro_auc_equals_the_mean_of_per_tag_aucs_over_scorable_tags():
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(0)
    truth, scores = (rng.random((50, 6)) < .3).astype(int), rng.random((50, 6))
    truth[:, 2] = 0
    auc, scored, dropped = macro_roc_auc(truth, scores)
    assert (scored, dropped) == (5, 1)
    assert auc == pytest.approx(np.mean([roc_auc_score(truth[:, j], scores[:, j]) for j in (0, 1, 3, 4, 5)]))
    assert np.isnan(macro_roc_auc(np.zeros((4, 2)), np.ones((4, 2)))[0])


def test_early_stopping_stops_an_overfitting_tagger_and_seeds_are_reproducible():
    rng = np.random.default_rng(5)
    x = lambda n: rng.normal(size=(n, 32))
    tags = lambda n: [[f'tag{j}' for j in range(4) if rng.random() < .3] for _ in range(n)]
    data = (x(64), tags(64), x(64), tags(64), x(64), tags(64))
    a = tagging_auc(*data, repeats=2, hidden=(64, 32), max_epochs=200, patience=5, seed=3, verbose=False)
    assert (a.epochs < 200).all() and (a.epochs == a.best_epoch + 5).all(), a
    assert a.roc_auc.nunique() == 2
    pd.testing.assert_frame_equal(a, tagging_auc(*data, repeats=2, hidden=(64, 32), max_epochs=200, patience=5, seed=3,
                                                 verbose=False))


def test_tag_lists_must_be_lists():
    with pytest.raises(TypeError, match='one list of tag names per track'):
        tag_matrices([['rock'], 'pop'])
    (xa, ta), (xb, tb) = blob_tracks(20, 1), blob_tracks(10, 2)
    with pytest.raises(ValueError, match='valid_x has shape'):
        tagging_auc(xa, ta, xb[:-1], tb, xb, tb, repeats=1, verbose=False)


# --- linear probes --------------------------------------------------------------------------------------------------

def test_grouped_folds_never_share_a_group_and_bring_a_group_label_to_chance():
    centres = np.random.default_rng(3).normal(size=(60, 96)) * 3
    gid = np.repeat(np.arange(60), 3)
    x = centres[gid] + np.random.default_rng(4).normal(scale=.1, size=(180, 96))
    y = gid % 2                                                  # a function of the group only
    for train, test in probe_splits(y, groups=gid, seed=1):
        assert not set(gid[train]) & set(gid[test])
    assert linear_probe(x, y)['mean'] >= 0.95                    # ungrouped: groups seen in training are recognised
    grouped = linear_probe(x, y, groups=gid)
    assert grouped['mean'] <= 0.7 and len(grouped['folds']) == 5, grouped


def test_probes_read_what_is_there_and_report_chance():
    x, _, y = blob_chunks(100, chunks=1, seed=0)
    cat = linear_probe(x, y)
    assert cat['mean'] >= 0.95 and cat['chance'] == pytest.approx(0.25, abs=0.05)
    w = np.random.default_rng(1).normal(size=(16, 2))
    cont = linear_probe(x, x @ w, 'continuous', alpha=1e-3)      # two latents at once
    assert cont['metric'] == 'r2' and cont['mean'] > 0.999 and cont['chance'] <= 0
    assert linear_probe(x, np.random.default_rng(2).normal(size=100), 'continuous')['mean'] < 0.1
    with pytest.raises(ValueError, match='one group per item'):
        linear_probe(x, y, groups=np.arange(10))


# --- tables ---------------------------------------------------------------------------------------------------------

def test_mean_sd_and_summaries():
    assert mean_sd([0.768, 0.756, 0.780]) == '0.768 ± 0.012'
    assert mean_sd([63.28], 2) == '63.28'
    runs = pd.DataFrame({'system': ['Contr_G'] * 3 + ['B-line_G'] * 2, 'task': ['gtzan'] * 5,
                         'accuracy': [0.768, 0.756, 0.780, 0.63, np.nan]})
    table = summarise_repeats(runs, ['system', 'task'], 'accuracy')
    assert table.system.tolist() == ['Contr_G', 'B-line_G'] and table.n.tolist() == [3, 1]
    assert table['mean ± sd'].tolist() == ['0.768 ± 0.012', '0.630']
    assert np.isnan(table.sd.iloc[1])
