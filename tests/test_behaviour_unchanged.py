"""No accidental change of behaviour: the tiny results of 05–07, the embedders' cache folders and the content keys of
the rendered files are those last recorded on purpose (`tests/fixtures/baseline/make_baseline.py` says when and why)."""
import importlib.util, json
from pathlib import Path

import pandas as pd

BASELINE = Path(__file__).parent / 'fixtures' / 'baseline'
spec = importlib.util.spec_from_file_location('make_baseline', BASELINE / 'make_baseline.py')
make_baseline = importlib.util.module_from_spec(spec); spec.loader.exec_module(make_baseline)


def test_tiny_wu_results_are_those_last_recorded(tmp_path):
    (tmp_path / 'runs').mkdir()
    ours = make_baseline.wu_results(tmp_path / 'home', tmp_path / 'runs')
    recorded = pd.read_csv(BASELINE / 'tiny_wu_results.csv')
    pd.testing.assert_frame_equal(ours, recorded, check_exact=False, rtol=1e-9, atol=1e-12)


def test_embedding_cache_keys_are_those_last_recorded():
    recorded = json.loads((BASELINE / 'embedding_cache_keys.json').read_text())
    assert make_baseline.cache_keys() == recorded
