"""Classification (Wu et al. 2021 §2.3, §4): features, the mix-in sweep, centroid analysis, the chosen pair; clear errors."""
import json

import numpy as np
import pandas as pd
import pytest

from crossmodal.classification import (balanced_sample, centroid_distances, check_same_classes, chosen_pair,
                                       cluster_separation, make_forest, mix_in_run, mix_in_sweep, project_subsets,
                                       single_modality_run, zero_shot_ratios)
from crossmodal.data.pairs import make_pairs
from crossmodal.translation import fit_pca, pair_embeddings, studio_embeddings, train_translation


@pytest.fixture(scope='module')
def projected():
    am, im, ae, ie = studio_embeddings('tiny', 0, 'mfcc', 'hog_colour')
    pairs = make_pairs(am, im, 'tiny', 0)
    xa, xi, _ = pair_embeddings(pairs, am, im, ae, ie, 'translation')
    translator, _ = train_translation(xa, xi, 'tiny', seed=0, max_epochs=2, progress=False)
    k = min(128, xa.shape[1], xi.shape[1])
    pca = {'audio': fit_pca(xa, k, verbose=False), 'image': fit_pca(xi, k, verbose=False)}
    return project_subsets(pairs, am, im, ae, ie, translator, pca), (pairs, am, im, ae, ie, translator, xa, xi)


def test_features_have_one_space_per_system(projected):
    (features, labels), _ = projected
    for space in ('PCA', 'translated'):
        assert features[space]['audio']['classification_train'].shape[1] == features[space]['image']['classification_train'].shape[1]
        for m in ('audio', 'image'):
            for subset in ('classification_train', 'classification_test'):
                assert len(features[space][m][subset]) == len(labels[m][subset])
    assert set(labels['audio']['classification_test']) == set(labels['image']['classification_test'])


def test_pca_dimensions_must_match_for_mmp(projected):
    _, (pairs, am, im, ae, ie, translator, xa, xi) = projected
    with pytest.raises(ValueError, match='MMP needs one input space'):
        project_subsets(pairs, am, im, ae, ie, translator, {'audio': fit_pca(xa, 10), 'image': fit_pca(xi, 20)})


def test_sweep_and_ratio_on_tiny(projected):
    (features, labels), _ = projected
    sweep = mix_in_sweep(features, labels, fractions=(0, 1.0), seeds=(0,), progress=False)
    assert len(sweep) == 2 * 2 * 2 + 2
    assert sweep.macro_f1.between(0, 1).all()
    ratios = zero_shot_ratios(sweep)
    assert list(ratios.index) == ['audio', 'image'] and np.isfinite(ratios).all()
    assert mix_in_run(features, labels, 'PCA', 'audio', 0.5, seed=1) == mix_in_run(features, labels, 'PCA', 'audio', 0.5, seed=1)
    assert 0 <= single_modality_run(features, labels, 'image') <= 1


def test_class_missing_from_one_modality_is_a_clear_error(projected):
    (features, labels), _ = projected
    dropped = labels['image']['classification_train'][0]
    keep = labels['image']['classification_train'] != dropped
    features_cut = {s: {m: dict(v) for m, v in f.items()} for s, f in features.items()}
    labels_cut = {m: dict(v) for m, v in labels.items()}
    for s in features_cut: features_cut[s]['image']['classification_train'] = features[s]['image']['classification_train'][keep]
    labels_cut['image']['classification_train'] = labels['image']['classification_train'][keep]
    with pytest.raises(ValueError, match=rf"class\(es\) \['{dropped}'\] of the test data have no training item"):
        mix_in_run(features_cut, labels_cut, 'translated', 'audio', 0.0)   # trained on images, which lack the class
    with pytest.raises(ValueError, match=rf"present in one modality only: {{'audio': \['{dropped}'\], 'image': \[\]}}"):
        centroid_distances({m: features_cut['PCA'][m]['classification_train'] for m in ('audio', 'image')},
                           {m: labels_cut[m]['classification_train'] for m in ('audio', 'image')})


def test_balanced_sample_and_forest():
    labels = np.array(['a'] * 10 + ['b'] * 4)
    idx = balanced_sample(labels, 0.5, np.random.default_rng(0))
    assert sorted(labels[idx]) == ['a', 'a', 'b', 'b']
    assert make_forest(0).get_params()['n_estimators'] == 100
    with pytest.raises(ValueError, match="class\\(es\\) \\['c'\\]"):
        check_same_classes(['a', 'b'], ['c'], 'x')


def test_centroid_separation_is_scale_free():
    rng = np.random.default_rng(0)
    feats = {m: rng.normal(size=(40, 3)) for m in ('audio', 'image')}
    labs = {m: np.repeat(['p', 'q'], 20) for m in ('audio', 'image')}
    d = centroid_distances(feats, labs, 'class')
    d10 = centroid_distances({m: 10 * x for m, x in feats.items()}, labs, 'class')
    assert cluster_separation(d) == pytest.approx(cluster_separation(d10))
    with pytest.raises(ValueError, match="order must be 'modality' or 'class'"):
        centroid_distances(feats, labs, 'size')


def test_chosen_pair(tmp_path):
    assert chosen_pair(tmp_path) is None
    (tmp_path / 'selection.json').write_text(json.dumps({'audio': 'MTT_vgg'}))
    with pytest.raises(ValueError, match="lacks 'audio'/'image'"):
        chosen_pair(tmp_path)
    (tmp_path / 'selection.json').write_text(json.dumps({'audio': 'MTT_vgg', 'image': 'hog'}))
    assert chosen_pair(tmp_path) == ('MTT_vgg', 'hog')
