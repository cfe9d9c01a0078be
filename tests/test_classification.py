"""Classification (Wu et al. 2021 §2.3, §4): features, the mix-in sweep, centroid analysis, the claims table; clear errors."""
import json

import numpy as np
import pandas as pd
import pytest

from crossmodal.evaluate.classification import (FRACTIONS, balanced_sample, centroid_distances, check_same_classes,
                                                cluster_separation, make_forest, mix_in_run, mix_in_sweep, project_subsets,
                                                single_modality_run, zero_shot_ratios)
from crossmodal.evaluate.claims import VERDICTS, Claim, claims_table, judge, verdict
from crossmodal.data.pairs import make_pairs
from crossmodal.embedders.choice import pair_embeddings, studio_embeddings
from crossmodal.spaces.translation import fit_pca, shared_pca_components, train_translation


@pytest.fixture(scope='module')
def projected():
    am, im, ae, ie = studio_embeddings('tiny', 0, 'mfcc', 'hog_colour')
    pairs = make_pairs(am, im, 12, 0)
    xa, xi, _ = pair_embeddings(pairs, am, im, ae, ie, 'translation')
    translator, _ = train_translation(xa, xi, seed=0, batch_size=32, max_epochs=2, progress=False)
    k = shared_pca_components(xa, xi)
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


def test_the_chosen_pair_has_one_reader(tmp_path):
    "07 reads the selection through retrieval's reader; classification keeps no reader or results-table parser of its own."
    import crossmodal.evaluate.classification as classification
    from crossmodal.evaluate.retrieval import chosen_pair, write_selection
    assert not hasattr(classification, 'chosen_pair') and not hasattr(classification, 'PAIR_SEPARATORS')
    write_selection(tmp_path, dict(audio='MTT_vgg', image='hog', ndcg=0.5))
    assert (chosen_pair(tmp_path)['audio'], chosen_pair(tmp_path)['image']) == ('MTT_vgg', 'hog')
    (tmp_path / 'selection.json').write_text(json.dumps({'audio': 'MTT_vgg'}))
    with pytest.raises(ValueError, match="lacks 'audio'/'image'"):
        chosen_pair(tmp_path)


def test_shared_pca_components_is_the_rule_of_05_and_07():
    rng = np.random.default_rng(0)
    for n, d_audio, d_image in [(500, 200, 1828), (500, 40, 1828), (30, 200, 1828), (1000, 256, 128)]:
        assert shared_pca_components(rng.normal(size=(n, d_audio)), rng.normal(size=(n, d_image))) == min(128, d_audio, d_image, n)
    assert shared_pca_components(np.zeros((500, 90)), np.zeros((500, 70)), max_components=64) == 64
    with pytest.raises(ValueError, match='3 audio rows but 2 image rows'):
        shared_pca_components(np.zeros((3, 4)), np.zeros((2, 4)))


def test_fractions_defined_once_are_the_sweeps_default():
    import inspect
    assert FRACTIONS[0] == 0 and FRACTIONS[-1] == 1.0 and list(FRACTIONS) == sorted(FRACTIONS)
    assert inspect.signature(mix_in_sweep).parameters['fractions'].default is FRACTIONS


def test_verdicts_come_from_a_computed_test():
    assert [verdict(True), verdict(False), verdict(None), verdict(np.nan), verdict(np.float64('nan'))] == \
           ['supported', 'contradicted', 'not testable here', 'not testable here', 'not testable here']
    assert verdict(np.bool_(True)) == 'supported' and set(VERDICTS) == {'supported', 'contradicted', 'not testable here'}


def test_claims_table_checks_every_row():
    ratio = Claim('zero-shot MMT reaches almost 70%', 'Wu et al. 2021, §4.2', 'supported when the interval meets 60-80%', 'almost 70%')
    rows = [judge(ratio, 0.62 <= 0.8 and 0.75 >= 0.6, 'like for like', 0.7, 0.62, 0.75),
            judge(Claim('b', 'Wu et al. 2021, Figure 3', 'supported when above 0'), None, 'slow cell')]
    table = claims_table(rows)
    assert table.columns.tolist() == ['claim', 'source', 'published', 'value', 'low', 'high', 'rule', 'verdict', 'reason']
    assert table.verdict.tolist() == ['supported', 'not testable here']
    assert table.published.tolist() == ['almost 70%', '—'] and np.isnan(table.value[1])
    with pytest.raises(ValueError, match="claim 0 has verdict 'yes'"):
        claims_table([dict(rows[0], verdict='yes')])
    with pytest.raises(ValueError, match=r"claim 1 \('b'\) lacks \['reason'\]"):
        claims_table([rows[0], dict(rows[1], reason='')])
    with pytest.raises(ValueError, match=r"lacks \['rule'\]"):
        Claim('c', 'a source', ' ')
    with pytest.raises(ValueError, match='interval from 0.9 to 0.1'):
        judge(ratio, True, 'r', 0.5, 0.9, 0.1)


def test_the_report_shows_every_sections_claims(tmp_path):
    "Claims written by two sections come back in the run's report, section by section, with their rules."
    from crossmodal.evaluate.claims import write_claims
    from crossmodal.run.report import report_parts
    claim = Claim('MMT trails MMP with all data', 'Wu et al. 2021, §4.2', 'supported when the interval is above 0')
    write_claims(claims_table([judge(claim, True, 'gap above 0', 0.05, 0.01, 0.09)]), 'classification', tmp_path)
    write_claims(claims_table([judge(claim, None, 'too few pairs')]), 'retrieval', tmp_path)
    state = {'profile': 'tiny', 'notebooks': {}}
    parts = {title: table for title, _, table in report_parts(tmp_path, state, pd.DataFrame(columns=['section', 'experiment', 'system', 'metric', 'value', 'profile', 'seed']))}
    shown = parts["The papers' claims"]
    assert shown.section.tolist() == ['classification', 'retrieval']
    assert shown.verdict.tolist() == ['supported', 'not testable here'] and shown.rule.iloc[0] == claim.rule
    assert shown[['value', 'low', 'high']].iloc[0].tolist() == [0.05, 0.01, 0.09]
