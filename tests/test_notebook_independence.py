"""Notebooks must not change what the package is: re-running export cells in a notebook leaves the registry as the
package builds it, and notebooks that `nbdev_test` may put in one worker process pass in either grouping."""
import json, os, subprocess, sys
from pathlib import Path

from crossmodal.core import repo_root

ROOT = repo_root()
ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg', 'CROSSMODAL_QUIET': '1'}
REGISTERING_NOTEBOOKS = ['03_embedders', '03b_classical', '03c_text', '03e_musicnn', '03g_pictonet', '03n_paper_models']

REGISTRY_AFTER_EXPORT_CELLS = r'''
import json, sys
import nbformat
from crossmodal.embedders.base import available_embedders
def table():
    cols = ['name', 'modality', 'dim', 'summary', 'kind', 'module', 'available', 'why_not']
    return available_embedders()[cols].astype(str).sort_values('name').to_dict('records')
before = table()
for path in sys.argv[1:]:   # every export cell, run as a notebook runs it: in __main__
    namespace = {'__name__': '__main__'}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == 'code' and cell.source.lstrip().startswith('#| export'):
            exec(compile(cell.source, path, 'exec'), namespace)
print(json.dumps(dict(before=before, after=table())))
'''


def test_export_cells_run_in_a_notebook_leave_the_registry_as_the_package_builds_it():
    paths = [str(ROOT / 'nbs' / f'{n}.ipynb') for n in REGISTERING_NOTEBOOKS]
    proc = subprocess.run([sys.executable, '-c', REGISTRY_AFTER_EXPORT_CELLS, *paths], capture_output=True, text=True,
                          env=ENV, cwd=ROOT / 'nbs', timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = json.loads(proc.stdout.strip().splitlines()[-1])
    before = {r['name']: r for r in tables['before']}
    after = {r['name']: r for r in tables['after']}
    assert set(after) == set(before)
    changed = {n: (before[n], after[n]) for n in before if before[n] != after[n]}
    assert not changed, changed
    kinds = {n: r['kind'] for n, r in before.items() if not n.endswith('.*')}
    assert kinds['vggish'] == kinds['clap_music_text'] == 'paper' and kinds['mfcc'] == 'descriptor'
    assert kinds['MTT_musicnn'] == kinds['pictonet'] == kinds['minilm'] == 'packaged'


def test_paper_models_then_translation_in_one_process():
    "The order that once failed: the paper models' registration cells (03b then, 03n now), then 05's tests, in one nbdev_test worker."
    nbdev_test = Path(sys.executable).parent / 'nbdev_test'
    proc = subprocess.run([str(nbdev_test), '--path', 'nbs', '--file_re', r'^(03n_paper_models|05_translation)\.ipynb$',
                           '--n_workers', '0'], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def test_wu_notebooks_pass_on_an_empty_data_home(tmp_path):
    "05–07 before anything else has run (nbdev_test may schedule them first): no pictonet weights, no rendered data."
    nbdev_test = Path(sys.executable).parent / 'nbdev_test'
    env = {**ENV, 'CROSSMODAL_HOME': str(tmp_path / 'home')}
    proc = subprocess.run([str(nbdev_test), '--path', 'nbs', '--file_re',
                           r'^(05_translation|06_embedding_selection|07_classification)\.ipynb$', '--n_workers', '0'],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert not (tmp_path / 'home' / 'pictonet').exists() or not any((tmp_path / 'home' / 'pictonet').rglob('pictonet.pt'))
