"""End-to-end checks of the runner's command line, the README export and the notebook/library sync."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from crossmodal.core import RESULT_COLUMNS, repo_root
from crossmodal.run.folders import is_finished, read_state
from crossmodal.run.readme import README_HEADLINES, missing_headlines, render_readme, results_figure
from crossmodal.run.report import RESULT_KEYS, published_numbers, summarise_results
from crossmodal.run.sections import find_notebooks, plan_run

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


def test_seeds_make_one_run_each_here(tmp_path, section_nbs):
    out = tmp_path / 'runs'
    proc = cli('reproduce', '--profile', 'tiny', '--only', 'alpha', '--seeds', '3,1', '--out', out, '--nbs', section_nbs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count('crossmodal: run finished:') == 2
    runs = sorted(out.iterdir(), key=lambda p: read_state(p)['started'] + p.name)
    assert [read_state(p)['seed'] for p in runs] == [3, 1]                               # in the order given
    assert [pd.read_csv(p / 'results.csv').value.tolist() for p in runs] == [[4.0], [2.0]]   # (seed + 1) * scale 1


def test_readme_is_exported_from_index():
    assert (ROOT / 'README.md').read_text() == render_readme(), \
        'README.md is out of date: run `crossmodal readme` (it is written from nbs/index.ipynb)'


def _headline_numbers(line):
    "The numbers of a headline line: (its value, the reference's or None, the published one or None)."
    value, = re.findall(r'\*\*: (\S+) in the studio run', line)
    reference = re.findall(r' against (\S+) for ', line)
    published = re.findall(r'; (\S+) published, ', line)
    return float(value), (float(reference[0]) if reference else None), (float(published[0]) if published else None)


def test_readme_numbers_are_the_csvs():
    "Each number in the README's results is the committed data/last_studio_run.csv's (or published.csv's), to the 3 digits shown."
    summary = summarise_results(pd.read_csv(ROOT / 'data' / 'last_studio_run.csv'))
    expected = summary.set_index(RESULT_KEYS).value
    published = published_numbers().set_index(RESULT_KEYS).published
    results = (ROOT / 'README.md').read_text().split('## Results of the last studio run')[1]
    lines = [l for l in results.split('### Headline numbers')[1].splitlines() if l.startswith('- **')]
    assert missing_headlines(summary) == []                       # every headline key is in the CSV
    assert len(lines) == len(README_HEADLINES) <= 10              # one line per key, no more, and at most ten
    for headline, line in zip(README_HEADLINES, lines):
        assert line.startswith(f'- **{headline.title}**: '), (headline.title, line)
        value, reference, shown_published = _headline_numbers(line)
        assert value == pytest.approx(expected[headline.key], rel=5e-3), headline.key
        if headline.reference: assert reference == pytest.approx(expected[headline.reference], rel=5e-3), headline.reference
        if headline.key in published.index: assert shown_published == pytest.approx(published[headline.key], rel=5e-3)
        verdict = {True: 'Like for like: ', False: 'Not like for like: ', None: 'Nothing published to compare it with: '}
        assert verdict[headline.like_for_like] in line               # every number says whether it compares like with like


def test_readme_figure_is_committed_and_drawn_from_the_csv():
    "The README's one figure exists where the README links it, and shows what `results_figure` draws from the CSV."
    from PIL import Image
    readme = (ROOT / 'README.md').read_text()
    links = re.findall(r'!\[[^]]*\]\(([^)]+)\)', readme)
    assert links == ['data/last_studio_run.png'], links
    committed = np.asarray(Image.open(ROOT / links[0]).convert('RGB'), dtype=float)
    fig = results_figure(summarise_results(pd.read_csv(ROOT / 'data' / 'last_studio_run.csv')).set_index(RESULT_KEYS).value)
    import io, matplotlib.pyplot as plt
    buffer = io.BytesIO(); fig.savefig(buffer, format='png', dpi=90); plt.close(fig)
    drawn = np.asarray(Image.open(buffer).convert('RGB'), dtype=float)
    assert committed.shape == drawn.shape and np.abs(committed - drawn).mean() < 2, 'run `crossmodal readme` to redraw it'


def test_readme_is_a_newcomers_page():
    "The README stays short (nbdev's is 9 KB; ours has the time budget table too) and its example is a cell of the index notebook that nbdev_test runs."
    readme = (ROOT / 'README.md').read_text()
    assert len(readme.encode()) < 12_000, len(readme.encode())   # 11 kB, and the time table issue 17 asks for
    index = nbformat.read(ROOT / 'nbs' / 'index.ipynb', as_version=4)
    example, = [c for c in index.cells if c.cell_type == 'code' and 'embed_manifest' in c.source]
    assert not example.source.startswith('#|') and f'```python\n{example.source}\n```' in readme
    code_lines = [l for l in example.source.splitlines() if l.strip() and not l.startswith(('import', 'from'))]
    assert len(code_lines) <= 5, code_lines


def _notebook_modules(path):
    "The modules a notebook exports (its `default_exp`), without the `crossmodal.` prefix."
    nb = nbformat.read(path, as_version=4)
    return {m for c in nb.cells for m in re.findall(r'^#\|\s*default_exp\s+(\S+)', c.source, re.M)}


def test_readme_map_lists_every_notebook_and_its_modules():
    "The map notebook → paper section → module in nbs/index.ipynb names every notebook once and the modules they export."
    index = nbformat.read(ROOT / 'nbs' / 'index.ipynb', as_version=4)
    cell, = [c for c in index.cells if c.source.startswith('## The notebooks')]
    rows = [l.split('|')[1:-1] for l in cell.source.splitlines() if l.startswith('| `')]
    notebooks = sorted(p.stem for p in (ROOT / 'nbs').glob('*.ipynb') if p.stem != 'index' and not p.stem.startswith(('docs_', '_')))
    covered = {}
    for names, _, modules in rows:
        patterns = re.findall(r'`([^`]+)`', names)
        listed = {m.removeprefix('crossmodal.') for m in re.findall(r'`([^`]+)`', modules)}
        mine = [n for n in notebooks if any(n == p or (p.endswith('*') and n.startswith(p[:-1])) for p in patterns)]
        for n in mine: covered.setdefault(n, []).append(names.strip())
        exported = set().union(*(_notebook_modules(ROOT / 'nbs' / f'{n}.ipynb') for n in mine)) if mine else set()
        assert mine, f'map row {names.strip()} names no notebook in nbs/: update the map in nbs/index.ipynb'
        stray = {m for m in exported if not any(m == l or m.startswith(l + '.') for l in listed)}
        assert not stray, f'map row {names.strip()}: its notebooks also export {sorted(stray)}: update the map in nbs/index.ipynb'
        stale = {l for l in listed if not any(m == l or m.startswith(l + '.') for m in exported)}
        assert not stale, f'map row {names.strip()} lists {sorted(stale)}, which its notebooks do not export: update the map'
    assert sorted(covered) == notebooks, f'notebooks missing from the map in nbs/index.ipynb: {sorted(set(notebooks) - set(covered))}'
    assert all(len(v) == 1 for v in covered.values()), {k: v for k, v in covered.items() if len(v) > 1}


def test_section_notebooks_declarations_keep_the_file_name_order():
    "The real section notebooks' dataflow declarations make a graph (no undeclared input, no cycle) that keeps file order."
    notebooks = find_notebooks(ROOT / 'nbs')
    assert plan_run(notebooks) == (notebooks, None)


def test_only_runs_what_the_notebook_reads_and_list_shows_it(tmp_path):
    "`--only gamma` runs gamma and the notebook whose output it reads, saying so in one line; `list` shows the declarations."
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    write_notebook(nbs / '01_alpha.ipynb', "#| hide\nwrites = ['x.txt']", "open(run_dir + '/x.txt', 'w').write('alpha')",
                   RECORD.format(sec='alpha'))
    write_notebook(nbs / '02_beta.ipynb', "#| hide\nreuses = ['x.txt']", RECORD.format(sec='beta'))
    write_notebook(nbs / '03_gamma.ipynb', "#| hide\nreads = ['x.txt']", "assert open(run_dir + '/x.txt').read() == 'alpha'",
                   RECORD.format(sec='gamma'))
    listed = cli('list', '--nbs', nbs)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].endswith('01_alpha.ipynb  (writes x.txt)') and '(reads x.txt)' in listed.stdout
    proc = cli('reproduce', '--profile', 'tiny', '--only', 'gamma', '--out', tmp_path / 'runs', '--nbs', nbs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == 'crossmodal: --only gamma also runs alpha (gamma reads its x.txt)'
    run_dir = next((tmp_path / 'runs').iterdir())
    assert pd.read_csv(run_dir / 'results.csv').section.tolist() == ['alpha', 'gamma']   # beta only reuses x.txt: not added
    assert read_state(run_dir)['only'] == ['gamma']


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
