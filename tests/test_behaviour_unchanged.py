"""No accidental change of behaviour: the tiny results of 05–07 (per processor vector unit), the embedders' cache
folders and the content keys of the rendered files are those last recorded on purpose (`tests/fixtures/baseline/make_baseline.py` says when and why)."""
import importlib.util, json
from pathlib import Path

import pandas as pd
import pytest

BASELINE = Path(__file__).parent / 'fixtures' / 'baseline'
spec = importlib.util.spec_from_file_location('make_baseline', BASELINE / 'make_baseline.py')
make_baseline = importlib.util.module_from_spec(spec); spec.loader.exec_module(make_baseline)


def test_tiny_wu_results_are_those_last_recorded(tmp_path):
    """Against the results recorded on a processor of the same vector unit (make_baseline.py says why they differ
    between AVX-512 and AVX2); on one never recorded the test cannot tell a change of behaviour from one of
    arithmetic, and says so."""
    recorded_file = make_baseline.wu_results_file()
    if not recorded_file.exists():
        pytest.skip(f"no tiny results recorded for vector unit {make_baseline.vector_unit()!r} (recorded: "
                    f"{', '.join(sorted(p.name for p in BASELINE.glob('tiny_wu_results.*.csv')))}); record them from a "
                    "commit known to behave as intended with tests/fixtures/baseline/make_baseline.py")
    (tmp_path / 'runs').mkdir()
    ours = make_baseline.wu_results(tmp_path / 'home', tmp_path / 'runs')
    recorded = pd.read_csv(recorded_file)
    pd.testing.assert_frame_equal(ours, recorded, check_exact=False, rtol=1e-9, atol=1e-12)


def test_embedding_cache_keys_are_those_last_recorded():
    recorded = json.loads((BASELINE / 'embedding_cache_keys.json').read_text())
    assert make_baseline.cache_keys() == recorded
