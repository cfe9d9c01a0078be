"""The tutorial path: a section notebook run outside the runner — papermill from the command line, as a reader's
JupyterLab kernel runs it — says which profile it ran and why, and keeps its numbers in the run folder it is given."""
import json, os, subprocess, sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_papermill_from_the_command_line_without_the_runner(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    env.update(CROSSMODAL_HOME=str(tmp_path / 'home'), HF_HUB_OFFLINE='1', MPLBACKEND='Agg', CROSSMODAL_QUIET='1')
    papermill = Path(sys.executable).parent / 'papermill'
    out, run_dir = tmp_path / 'ontology.ipynb', tmp_path / 'my-run'
    done = subprocess.run([str(papermill), str(ROOT / 'nbs' / '01_ontology.ipynb'), str(out), '-p', 'run_dir', str(run_dir),
                           '--cwd', str(tmp_path)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = ''.join(''.join(o.get('text', '')) for c in json.loads(out.read_text())['cells'] for o in c.get('outputs', []))
    # no profile given, a machine without the studio render: tiny, and the line says why and how to change it
    assert 'crossmodal: profile tiny (the studio data are not rendered here yet' in printed, printed[:2000]
    assert f'numbers into {run_dir}' in printed and '-p profile tiny|studio|paper' in printed
    table = pd.read_csv(run_dir / 'results' / 'ontology.csv')
    assert len(table) and set(table.profile) == {'tiny'}
