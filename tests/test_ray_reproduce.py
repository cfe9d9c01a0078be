"""`crossmodal reproduce --backend ray` on a local Ray instance the command starts itself (no network): two seeds give
the results tables of two local runs, a failing notebook stops only what depends on it in its own seed, and a missing
Ray or an unreachable address is one line."""
import json, os, socket, subprocess, sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

pytest.importorskip('ray', reason="Ray is the cluster extra: pip install -e '.[cluster]'")

from crossmodal.run.folders import is_finished, read_state

ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg', 'CROSSMODAL_QUIET': '1', 'RAY_USAGE_STATS_ENABLED': '0'}


def cli(*args, env=None):
    return subprocess.run([sys.executable, '-m', 'crossmodal', *map(str, args)], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, timeout=900)


def write_notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "tiny"\nseed = 0\nrun_dir = None\nscale = 1', metadata={'tags': ['parameters']})]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, path)


RECORD = "from crossmodal.core import Results\nr = Results({section!r}, profile, seed, run_dir)\n"


@pytest.fixture
def section_nbs(tmp_path):
    "alpha writes a file beta reads (so beta runs after alpha); gamma depends on nothing; delta reads beta's; beta breaks for $BREAK_SEED."
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    write_notebook(nbs / '01_alpha.ipynb', "writes = ['alpha.txt']",
                   RECORD.format(section='alpha') + "from pathlib import Path\nPath(run_dir, 'alpha.txt').write_text(str((seed + 1) * scale))\n"
                   "r.record('demo', 'scaled seed', 'value', (seed + 1) * scale)")
    write_notebook(nbs / '02_beta.ipynb', "reads = ['alpha.txt']\nwrites = ['beta.txt']",
                   "import os\nif seed == int(os.environ.get('BREAK_SEED', -1)): raise RuntimeError('beta broke')",
                   RECORD.format(section='beta') + "from pathlib import Path\n"
                   "r.record('demo', 'alpha plus one', 'value', float(Path(run_dir, 'alpha.txt').read_text()) + 1)")
    write_notebook(nbs / '03_gamma.ipynb', RECORD.format(section='gamma') +
                   "import os\nr.record('demo', 'threads', 'value', int(os.environ['CROSSMODAL_THREADS']))")
    write_notebook(nbs / '04_delta.ipynb', "reads = ['beta.txt']", 'x = 1')   # never writes beta.txt: only the order matters
    return nbs


def results(run_dir):
    return pd.read_csv(Path(run_dir) / 'results.csv').sort_values(['section', 'experiment']).reset_index(drop=True)


def test_two_seeds_on_ray_give_the_results_of_two_local_runs(tmp_path, section_nbs):
    proc = cli('reproduce', '--backend', 'ray', '--profile', 'tiny', '--seeds', '0-1', '-p', 'scale=10',
               '--out', tmp_path / 'ray', '--nbs', section_nbs)
    assert proc.returncode == 0, proc.stderr
    on_ray = sorted((tmp_path / 'ray').iterdir())
    assert [p.name.rsplit('-', 1)[1] for p in on_ray] == ['seed0', 'seed1']
    for seed, run_dir in enumerate(on_ray):
        assert is_finished(run_dir) and (run_dir / 'report.html').exists() and (run_dir / 'report.md').exists()
        state = read_state(run_dir)
        assert (state['backend'], state['seed']) == ('ray', seed)
        assert {k: v['status'] for k, v in state['notebooks'].items()} == dict.fromkeys(['01_alpha', '02_beta', '03_gamma', '04_delta'], 'finished')
        local = cli('reproduce', '--profile', 'tiny', '--seed', seed, '-p', 'scale=10', '--out', tmp_path / 'local', '--nbs',
                    section_nbs, env={'CROSSMODAL_THREADS': '1'})   # a Ray task of the tiny profile computes with one thread
        assert local.returncode == 0, local.stderr
        local_dir = max((tmp_path / 'local').iterdir(), key=lambda p: p.stat().st_mtime)
        pd.testing.assert_frame_equal(results(run_dir), results(local_dir))
    assert results(on_ray[1]).value.tolist() == [20.0, 21.0, 1.0]   # alpha (1+1)*10, beta read alpha's file, gamma's threads


def test_a_failing_notebook_stops_only_what_reads_it_in_its_own_seed_and_the_seed_resumes_here(tmp_path, section_nbs):
    out = tmp_path / 'runs'
    proc = cli('reproduce', '--backend', 'ray', '--profile', 'tiny', '--seeds', '0-1', '--out', out, '--nbs', section_nbs,
               env={'BREAK_SEED': '1'})
    assert proc.returncode == 1, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith('crossmodal: 1 of 2 seed runs did not finish: seed 1:'), proc.stderr
    assert "notebook 'beta' failed in cell" in lines[0] and 'RuntimeError: beta broke' in lines[0]
    seed0, seed1 = sorted(out.iterdir())
    assert is_finished(seed0) and not is_finished(seed1) and not (seed1 / 'report.md').exists()
    state = read_state(seed1)
    assert state['status'] == 'failed'
    assert {k: v['status'] for k, v in state['notebooks'].items()} == {'01_alpha': 'finished', '02_beta': 'failed', '03_gamma': 'finished',
                                                                       '04_delta': 'not run'}
    assert state['notebooks']['04_delta'] == {'status': 'not run', 'seconds': 0.0, 'error': 'not run: 02_beta did not finish'}
    assert not (seed1 / 'notebooks' / '04_delta.ipynb').exists()
    assert f'crossmodal reproduce --resume {seed1.name}' in lines[0]
    resumed = cli('reproduce', '--resume', seed1.name, '--out', out, '--nbs', section_nbs)   # here, with beta fixed
    assert resumed.returncode == 0, resumed.stderr
    assert '2 notebook(s) already finished, 2 to run' in resumed.stdout
    assert is_finished(seed1) and results(seed1).value.tolist() == [2.0, 3.0, 1.0]


def test_no_ray_or_no_cluster_is_one_line_and_no_run_folder(tmp_path, section_nbs):
    fake = tmp_path / 'no_ray' / 'ray'; fake.mkdir(parents=True)
    (fake / '__init__.py').write_text("raise ImportError(\"No module named 'ray'\", name='ray')\n")
    out = tmp_path / 'runs'
    proc = cli('reproduce', '--backend', 'ray', '--profile', 'tiny', '--out', out, '--nbs', section_nbs,
               env={'PYTHONPATH': str(fake.parent)})
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "crossmodal: Ray is not installed here (no module 'ray'); install the cluster extra: pip install -e '.[cluster]'"]
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    proc = cli('reproduce', '--backend', 'ray', '--address', f'127.0.0.1:{port}', '--profile', 'tiny', '--out', out, '--nbs', section_nbs)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f'crossmodal: no Ray cluster answers at 127.0.0.1:{port}')
    assert not out.exists()
