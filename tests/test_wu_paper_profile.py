"""The Wu et al. notebooks (05 translation, 06 retrieval, 07 classification) on the `paper` profile, end to end.

No AudioSet and no pretrained weights exist offline, so this runs the paper profile's code path on a generated
AudioSet folder in the official layout (`write_table2_fixture`) with the paper models' random weights — it checks the
wiring (loader → Table 2 subsets → paper embedders → translation → NDCG grid → selection → classification), not the
numbers."""
import os
from pathlib import Path

import pandas as pd
import pytest

from crossmodal.core import repo_root
from crossmodal.data.audioset_pairs import write_table2_fixture
from crossmodal.run.reproduce import reproduce
from crossmodal.run.report import collect_results

from crossmodal.embedders.paper.weights import keras_ready

if keras_ready(): pytest.skip(f'the paper models need keras: {keras_ready()}', allow_module_level=True)


@pytest.fixture(scope='module')
def paper_run(tmp_path_factory):
    root = write_table2_fixture(tmp_path_factory.mktemp('audioset'), per_class=5, two_class=4, unlabelled=24, speech=3)
    params = dict(audioset_root=str(root), embedder_weights='random', only_embedders=['vggish', 'resnet50'],
                  profile_overrides={'n_seeds': 2, 'max_epochs': 4, 'patience': 2, 'pairs_per_class': 3})
    run_dir = reproduce('paper', ['05_translation', '06_embedding_selection', '07_classification'], params,
                        out=tmp_path_factory.mktemp('runs'), show_progress=False)
    return run_dir, collect_results(run_dir)


def test_every_section_ran_and_recorded(paper_run):
    run_dir, results = paper_run
    assert set(results.section) == {'translation', 'retrieval', 'classification'}
    assert (results.profile == 'paper').all()
    assert results.value.notna().all()


def test_the_grid_and_the_choice_come_from_the_paper_models(paper_run):
    run_dir, results = paper_run
    retrieval = results[results.section == 'retrieval']
    assert 'vggish × resnet50' in set(retrieval.system)
    ndcg = retrieval[retrieval.metric.str.startswith('NDCG@30') & ~retrieval.metric.str.contains('share')]
    assert ndcg.value.between(0, 1).all()
    assert (Path(run_dir) / 'selection.json').exists()
    classification = results[results.section == 'classification']
    sweep = classification[classification.experiment == 'mix-in sweep']
    assert set(sweep.metric) == {'macro-F1'} and set(sweep.seed) == {0, 1}   # one row per repetition, averaged by the report


def test_studio_knobs_are_refused_on_the_paper_profile():
    from crossmodal.data.audioset_pairs import wu_pairs
    with pytest.raises(ValueError, match='no such knob'):
        wu_pairs('paper', 0, class_skew=0.0)
