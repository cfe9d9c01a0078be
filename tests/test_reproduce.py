"""End-to-end checks of the runner's command line, the README export and the notebook/library sync."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crossmodal.core import RESULT_COLUMNS, repo_root
from crossmodal.reproduce import README_HEADLINES, is_finished, missing_headlines, read_state, render_readme, summarise_results

ROOT = repo_root()
ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg', 'CROSSMODAL_QUIET': '1'}


def cli(*args, cwd=None):
    "Run `python -m crossmodal ARGS`; return the completed process."
    return subprocess.run([sys.executable, '-m', 'crossmodal', *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=cwd or ROOT, timeout=600)


def write_notebook(path, *cells):
    "A small section notebook: a parameters cell, then `cells`."
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell('profile = "tiny"\nseed = 0\nrun_dir = None\nscale = 1',
                                              metadata={'tags': ['parameters']}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, path)


RECORD = ("from crossmodal.core import Results\n"
          "r = Results('{sec}', profile, seed, run_dir)\n"
          "r.record('demo', 'scaled seed', 'value', (seed + 1) * scale)")


@pytest.fixture
def section_nbs(tmp_path):
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    write_notebook(nbs / '01_alpha.ipynb', RECORD.format(sec='alpha'))
    write_notebook(nbs / '02_beta.ipynb', RECORD.format(sec='beta'),
                   "import os\nif os.environ.get('BREAK_BETA'): raise RuntimeError('beta broke')")
    return nbs


def one_line_error(proc, text):
    assert proc.returncode != 0, proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('crossmodal: ') and text in lines[0], lines[0]


def test_bad_input_gives_one_line_errors_and_no_run_dir(tmp_path, section_nbs):
    out = tmp_path / 'runs'
    one_line_error(cli('reproduce', '--profile', 'huge', '--out', out, '--nbs', section_nbs), "unknown profile 'huge'")
    one_line_error(cli('reproduce', '--only', 'gamma', '--out', out, '--nbs', section_nbs), "unknown notebook 'gamma'")
    one_line_error(cli('reproduce', '-p', 'scale', '--out', out, '--nbs', section_nbs), "malformed parameter 'scale'")
    one_line_error(cli('reproduce', '--bogus'), 'unrecognized arguments: --bogus')
    assert not out.exists()                      # nothing was created by any of these
    blocker = tmp_path / 'a-file'; blocker.write_text('')
    one_line_error(cli('reproduce', '--profile', 'tiny', '--out', blocker / 'runs', '--nbs', section_nbs),
                   'cannot write to output directory')


def test_run_writes_results_report_and_passes_parameters(tmp_path, section_nbs):
    out = tmp_path / 'runs'
    proc = cli('reproduce', '--profile', 'tiny', '--seed', 2, '-p', 'scale=10', '--out', out, '--nbs', section_nbs)
    assert proc.returncode == 0, proc.stderr
    run_dir = next(out.iterdir())
    assert is_finished(run_dir)
    table = pd.read_csv(run_dir / 'results.csv')
    assert list(table.columns) == RESULT_COLUMNS
    assert table.section.tolist() == ['alpha', 'beta']
    assert table.value.tolist() == [30.0, 30.0]          # (seed 2 + 1) * scale 10 in both notebooks
    assert set(table.profile) == {'tiny'} and set(table.seed) == {2}
    for name in ['report.md', 'report.html', 'notebooks/01_alpha.ipynb', 'notebooks/02_beta.ipynb']:
        assert (run_dir / name).exists(), name
    assert 'scaled seed' in (run_dir / 'report.md').read_text()


def test_failure_names_notebook_and_cell_then_resume_skips_finished(tmp_path, section_nbs):
    out = tmp_path / 'runs'
    env_break = {**ENV, 'BREAK_BETA': '1'}
    proc = subprocess.run([sys.executable, '-m', 'crossmodal', 'reproduce', '--profile', 'tiny', '--out', str(out),
                           '--nbs', str(section_nbs)], capture_output=True, text=True, env=env_break, timeout=600)
    assert proc.returncode == 1
    assert "notebook 'beta' failed in cell 4" in proc.stderr and 'RuntimeError: beta broke' in proc.stderr
    run_dir = next(out.iterdir())
    assert f"partial output: {run_dir.resolve() / 'notebooks' / '02_beta.ipynb'}" in proc.stderr or \
           f"partial output: {run_dir / 'notebooks' / '02_beta.ipynb'}" in proc.stderr
    assert (run_dir / 'notebooks' / '02_beta.ipynb').exists()
    assert not is_finished(run_dir) and not (run_dir / 'report.md').exists()
    alpha_output = run_dir / 'notebooks' / '01_alpha.ipynb'
    first_mtime = alpha_output.stat().st_mtime_ns
    proc = cli('reproduce', '--resume', '--out', out, '--nbs', section_nbs)
    assert proc.returncode == 0, proc.stderr
    assert 'resuming' in proc.stdout and '1 notebook(s) already finished' in proc.stdout
    assert alpha_output.stat().st_mtime_ns == first_mtime       # alpha was not run again
    assert is_finished(run_dir)
    assert {k: v['status'] for k, v in read_state(run_dir)['notebooks'].items()} == {'01_alpha': 'finished', '02_beta': 'finished'}
    one_line_error(cli('reproduce', '--resume', run_dir.name, '--out', out, '--nbs', section_nbs), 'already finished')


def test_only_runs_the_named_notebooks(tmp_path, section_nbs):
    out = tmp_path / 'runs'
    proc = cli('reproduce', '--profile', 'tiny', '--only', 'beta', '--out', out, '--nbs', section_nbs)
    assert proc.returncode == 0, proc.stderr
    run_dir = next(out.iterdir())
    assert pd.read_csv(run_dir / 'results.csv').section.tolist() == ['beta']


def test_readme_is_exported_from_index():
    assert (ROOT / 'README.md').read_text() == render_readme(), \
        'README.md is out of date: run `crossmodal readme` (it is written from nbs/index.ipynb)'


def _markdown_tables(text):
    "Every markdown table in `text` as a list of dicts (header -> cell text)."
    tables, rows = [], []
    for line in text.splitlines() + ['']:
        if line.startswith('|'): rows.append([c.strip() for c in line.strip().strip('|').split('|')]); continue
        if rows: tables.append([dict(zip(rows[0], r)) for r in rows[2:]]); rows = []
    return tables


def test_readme_numbers_are_the_csvs():
    "Each number in the README's results is the committed data/last_studio_run.csv's, to the 4 digits shown."
    summary = summarise_results(pd.read_csv(ROOT / 'data' / 'last_studio_run.csv'))
    expected = {tuple(r[:4]): r[4] for r in summary[['section', 'experiment', 'system', 'metric', 'value']].itertuples(index=False)}
    results = (ROOT / 'README.md').read_text().split('## Results of the last studio run')[1]
    beside, headline = _markdown_tables(results)
    assert missing_headlines(summary) == []                       # every headline key is in the CSV
    assert len(headline) == len(README_HEADLINES)                 # one row per key, no more
    for row in beside + headline:
        key = (row['section'], row['experiment'], row['system'], row['metric'])
        assert float(row['value']) == pytest.approx(expected[key], rel=5e-4), key


def test_nbdev_export_changes_nothing(tmp_path):
    "Exporting the notebooks of this checkout reproduces the committed library byte for byte."
    copy = tmp_path / 'repo'
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns('.venv', '.git', 'assets', 'runs', '_proc', '*.egg-info', '__pycache__'))
    nbdev_export = Path(sys.executable).parent / 'nbdev_export'
    proc = subprocess.run([str(nbdev_export)], cwd=copy, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for path in sorted((ROOT / 'crossmodal').rglob('*.py')):
        rel = path.relative_to(ROOT)
        assert (copy / rel).read_text() == path.read_text(), f'{rel} differs from what nbdev_export writes: run nbdev_export'
    exported = {p.relative_to(copy) for p in (copy / 'crossmodal').rglob('*.py')}
    committed = {p.relative_to(ROOT) for p in (ROOT / 'crossmodal').rglob('*.py')}
    assert exported == committed
