"""The bad-input catalogue: every input a user can get wrong, and what they see instead of a crash or a dead end.

One test per case, its docstring naming the case. Three parts, by stage:

* the command line (`crossmodal reproduce`, `report`, `publish`): a non-zero exit status, exactly one line on stderr
  (`crossmodal: …`, no traceback) naming the offending value and the remedy, a run never left "running", and nothing
  that looks finished (no report, status not 'finished');
* the data stage: damaged or missing rendered files are found by their checksums and rendered again, SoundFont
  paths, the pictonet weights hint;
* the embedders stage: weights files given or damaged, tiny images, altered cache entries, kill -9 during an
  extraction, file modes, and the inputs that already gave a clear error (kept that way) — plus no network access.

Every test works in its own folders; an autouse fixture gives each a private CROSSMODAL_HOME."""
import json, os, shutil, signal, subprocess, sys, textwrap, time, warnings
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
os.environ.setdefault('CROSSMODAL_QUIET', '1')

import nbformat
import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from crossmodal.core import atomic_write, content_hash, repo_root
from crossmodal.embedders.base import Embedder, get_embedder
from crossmodal.embedders.cache import embed_manifest, embedding_cache_dir, EmbeddingEntries
from crossmodal.embedders.paper.weights import DamagedWeightsError, keras_ready
from crossmodal.embedders.paper.yamnet import YAMNet


# ==== the command line ===============================================================================================

CLI_ROOT = repo_root()
CLI_ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg', 'CROSSMODAL_QUIET': '1'}
CLI_ENV.pop('CROSSMODAL_RUN_DIR', None)


def _cli(*args, cwd=None, env=None, timeout=300):
    "Run `python -m crossmodal ARGS`; return the completed process."
    return subprocess.run([sys.executable, '-m', 'crossmodal', *map(str, args)], capture_output=True, text=True,
                          env=env or CLI_ENV, cwd=cwd or CLI_ROOT, timeout=timeout)


def _start_cli(*args, cwd=None, env=None):
    "Start `python -m crossmodal ARGS` in its own session (as a terminal's foreground job is); return the Popen."
    return subprocess.Popen([sys.executable, '-m', 'crossmodal', *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or CLI_ENV, cwd=cwd or CLI_ROOT, start_new_session=True)


def _section_notebook(path, *cells, parameters=''):
    "A small section notebook: a parameters cell (profile, seed, run_dir and `parameters`), then `cells`."
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell('profile = "tiny"\nseed = 0\nrun_dir = None\n' + parameters,
                                              metadata={'tags': ['parameters']}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, path)
    return path


_RECORD = ("from crossmodal.core import Results\n"
           "Results('{sec}', profile, seed, run_dir).record('demo', 'seed and scale', 'value', (seed + 1) * scale)")
# waits (up to a minute) for a file 'release' in the run's notebooks folder, after leaving a file 'started' there
_WAIT = ("import time, pathlib\npathlib.Path('started').write_text('')\n"
         "for _ in range(600):\n    if pathlib.Path('release').exists(): break\n    time.sleep(0.1)")


@pytest.fixture
def nbs(tmp_path):
    "Two quick section notebooks (alpha, beta; both take `scale`) and a slow one (waits for a release file)."
    folder = tmp_path / 'nbs'; folder.mkdir()
    _section_notebook(folder / '01_alpha.ipynb', _RECORD.format(sec='alpha'), parameters='scale = 1')
    _section_notebook(folder / '02_beta.ipynb', _RECORD.format(sec='beta'), parameters='scale = 1')
    _section_notebook(folder / '03_slow.ipynb', _WAIT)
    return folder


def _one_line(proc, *fragments):
    "Assert a non-zero exit and exactly one stderr line, no traceback, containing every fragment; return the line."
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert 'Traceback' not in proc.stderr and lines[0].startswith('crossmodal: '), proc.stderr
    for fragment in fragments: assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _runs(out):
    return sorted(p for p in Path(out).iterdir() if p.is_dir()) if Path(out).exists() else []


def _not_finished_looking(run_dir, status):
    "The run's status is `status` (never 'running' or 'finished') and there is no report."
    state = json.loads((run_dir / 'run.json').read_text())
    assert state['status'] == status, state
    assert not (run_dir / 'report.md').exists() and not (run_dir / 'report.html').exists()
    return state


def _wait_for(path, proc, seconds=120):
    "Wait until `path` exists (the slow notebook started), failing if the process ends first."
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f'{path} never appeared'
        time.sleep(0.2)


def _start_slow_run(tmp_path, nbs):
    "Start a run of the slow notebook in the background; return the process and its run folder once the notebook runs."
    proc = _start_cli('reproduce', '--profile', 'tiny', '--only', 'slow', '--out', tmp_path / 'runs', '--nbs', nbs)
    deadline = time.time() + 120
    while not _runs(tmp_path / 'runs'): assert proc.poll() is None and time.time() < deadline; time.sleep(0.2)
    run_dir, = _runs(tmp_path / 'runs')
    _wait_for(run_dir / 'notebooks' / 'started', proc)
    return proc, run_dir


def _kernels_of(run_dir):
    "Pids of live processes started for this run (they carry CROSSMODAL_RUN_DIR=<run_dir> in their environment)."
    marker = f'CROSSMODAL_RUN_DIR={Path(run_dir).resolve()}'.encode()
    pids = []
    for environ in Path('/proc').glob('[0-9]*/environ'):
        try:
            if marker in environ.read_bytes().split(b'\0'): pids.append(int(environ.parent.name))
        except OSError: pass
    return pids


def _no_kernel_left(run_dir, seconds=15):
    deadline = time.time() + seconds
    while _kernels_of(run_dir) and time.time() < deadline: time.sleep(0.2)
    assert not _kernels_of(run_dir), f'processes of {run_dir} still alive: {_kernels_of(run_dir)}'


# --- case 1: runner parameters given with -p ------------------------------------------------------------------------

def test_p_seed_is_the_seed_flag(tmp_path, nbs):
    "`-p seed=1` (the example the CLI's own error message recommended) crashed with `dict() got multiple values`."
    proc = _cli('reproduce', '--profile', 'tiny', '-p', 'seed=1', '--only', 'alpha', '--out', tmp_path / 'runs', '--nbs', nbs)
    assert proc.returncode == 0, proc.stderr
    run_dir, = _runs(tmp_path / 'runs')
    state = json.loads((run_dir / 'run.json').read_text())
    assert state['status'] == 'finished' and state['seed'] == 1 and state['parameters'] == {}
    assert pd.read_csv(run_dir / 'results.csv').value.tolist() == [2.0]        # (seed 1 + 1) * scale 1


def test_p_profile_is_the_profile_flag(tmp_path, nbs):
    "`-p profile=tiny` crashed like `-p seed=1`; it means `--profile tiny`."
    proc = _cli('reproduce', '-p', 'profile=tiny', '--only', 'alpha', '--out', tmp_path / 'runs', '--nbs', nbs)
    assert proc.returncode == 0, proc.stderr
    run_dir, = _runs(tmp_path / 'runs')
    assert json.loads((run_dir / 'run.json').read_text())['profile'] == 'tiny' and run_dir.name.endswith('-tiny')


def test_p_seed_contradicting_the_seed_flag(tmp_path, nbs):
    "`-p seed=1 --seed 2`: which seed? One line, and no run directory is created."
    _one_line(_cli('reproduce', '--profile', 'tiny', '-p', 'seed=1', '--seed', 2, '--out', tmp_path / 'runs', '--nbs', nbs),
              '-p seed=1 contradicts --seed 2', 'give the seed once, with --seed')
    assert not (tmp_path / 'runs').exists()


def test_p_profile_contradicting_the_profile_flag(tmp_path, nbs):
    "`-p profile=studio --profile tiny`: one line, no run directory."
    _one_line(_cli('reproduce', '--profile', 'tiny', '-p', 'profile=studio', '--out', tmp_path / 'runs', '--nbs', nbs),
              "-p profile='studio' contradicts --profile tiny", '--profile')
    assert not (tmp_path / 'runs').exists()


def test_p_run_dir_is_refused(tmp_path, nbs):
    "`-p run_dir=…` crashed after creating a run left 'running'; the runner owns run_dir."
    _one_line(_cli('reproduce', '--profile', 'tiny', '-p', 'run_dir=/elsewhere', '--out', tmp_path / 'runs', '--nbs', nbs),
              "-p run_dir='/elsewhere' cannot be set", '--out')
    assert not (tmp_path / 'runs').exists()


def test_p_empty_value_is_refused(tmp_path, nbs):
    "`-p scale=` (an unset shell variable, typically) was injected as ''."
    _one_line(_cli('reproduce', '--profile', 'tiny', '-p', 'scale=', '--out', tmp_path / 'runs', '--nbs', nbs),
              "parameter 'scale' has an empty value (-p scale=)", "-p \"scale=''\"")
    assert not (tmp_path / 'runs').exists()


def test_p_name_no_notebook_takes_is_refused(tmp_path, nbs):
    "`-p scael=2` (a typo) was injected and ignored by every notebook."
    _one_line(_cli('reproduce', '--profile', 'tiny', '-p', 'scael=2', '--only', 'alpha', '--out', tmp_path / 'runs', '--nbs', nbs),
              "parameter 'scael' is declared by no notebook of this run (alpha)", 'they take: scale')
    assert not (tmp_path / 'runs').exists()


def test_resume_after_a_p_seed_crash_is_refused(tmp_path, nbs):
    "A run an older crossmodal created with `-p seed=1` (left 'running', never run): resuming it crashed again."
    run_dir = tmp_path / 'runs' / '20260101-000000-tiny'; run_dir.mkdir(parents=True)
    (run_dir / 'run.json').write_text(json.dumps(dict(run_id=run_dir.name, profile='tiny', seed=0, parameters={'seed': 1},
        only=['alpha'], status='running', started='2026-01-01T00:00:00', versions={}, notebooks={'01_alpha': {'status': 'pending'}})))
    _one_line(_cli('reproduce', '--resume', '--out', tmp_path / 'runs', '--nbs', nbs),
              f'run {run_dir.name} was made with -p seed', 'start a new run with --seed')
    assert not (run_dir / 'report.md').exists()


# --- case 2: failures outside a cell ----------------------------------------------------------------------------------

def test_unknown_kernel(tmp_path, nbs):
    "`--kernel nosuch` printed a NoSuchKernel traceback and marked the run 'interrupted'."
    _one_line(_cli('reproduce', '--profile', 'tiny', '--kernel', 'nosuch', '--out', tmp_path / 'runs', '--nbs', nbs),
              "no Jupyter kernel named 'nosuch'", 'installed: ', 'choose one with --kernel')
    assert not (tmp_path / 'runs').exists()


def test_kernel_that_never_starts(tmp_path, nbs):
    "A kernel that never answers (its argv is `sleep`) hung the run; now it fails after --start-timeout, in one line."
    spec = tmp_path / 'jupyter' / 'kernels' / 'sleepy'; spec.mkdir(parents=True)
    (spec / 'kernel.json').write_text(json.dumps({'argv': ['sleep', '600'], 'display_name': 'sleepy', 'language': 'python'}))
    env = {**CLI_ENV, 'JUPYTER_PATH': str(tmp_path / 'jupyter')}
    start = time.time()
    proc = _cli('reproduce', '--profile', 'tiny', '--only', 'alpha', '--kernel', 'sleepy', '--start-timeout', 2,
                '--out', tmp_path / 'runs', '--nbs', nbs, env=env)
    run_dir, = _runs(tmp_path / 'runs')
    _one_line(proc, "notebook 'alpha' could not run: kernel 'sleepy' did not start within 2 s", '--start-timeout',
              f'--resume {run_dir.name}')
    assert time.time() - start < 60
    state = _not_finished_looking(run_dir, 'failed')
    assert state['notebooks']['01_alpha']['status'] == 'failed' and 'did not start' in state['error']
    _no_kernel_left(run_dir)


def test_start_timeout_must_be_positive(tmp_path, nbs):
    "`--start-timeout 0` would fail every kernel: refused up front."
    _one_line(_cli('reproduce', '--profile', 'tiny', '--start-timeout', 0, '--out', tmp_path / 'runs', '--nbs', nbs),
              'start timeout 0', '--start-timeout 60')
    assert not (tmp_path / 'runs').exists()


def test_ctrl_c_is_one_line_and_marks_the_run_interrupted(tmp_path, nbs):
    "Ctrl-C printed a 20-line zmq traceback (the kernel's stderr) before its one-line message."
    proc, run_dir = _start_slow_run(tmp_path, nbs)
    os.killpg(proc.pid, signal.SIGINT)                       # what a terminal's Ctrl-C sends to the foreground job
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    _one_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
              "interrupted during notebook 'slow'", f'run {run_dir.name} is marked interrupted', f'--resume {run_dir.name}')
    state = _not_finished_looking(run_dir, 'interrupted')
    assert state['notebooks']['03_slow']['status'] == 'interrupted'
    _no_kernel_left(run_dir)


def test_sigterm_is_one_line_and_marks_the_run_terminated(tmp_path, nbs):
    "SIGTERM had no handler: the run stayed 'running' and the kernel was orphaned."
    proc, run_dir = _start_slow_run(tmp_path, nbs)
    proc.terminate()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143
    _one_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
              "terminated by SIGTERM during notebook 'slow'", f'run {run_dir.name} is marked terminated', f'--resume {run_dir.name}')
    state = _not_finished_looking(run_dir, 'terminated')
    assert state['notebooks']['03_slow']['status'] == 'terminated'
    _no_kernel_left(run_dir)


# --- case 3: one process per run ----------------------------------------------------------------------------------------

def test_resume_of_a_run_another_process_is_running(tmp_path, nbs):
    "`--resume` attached to a run still executing elsewhere and ran the same notebook into the same folder."
    first, run_dir = _start_slow_run(tmp_path, nbs)
    for resume in [['--resume'], ['--resume', run_dir.name], ['--resume', run_dir]]:
        _one_line(_cli('reproduce', *resume, '--out', tmp_path / 'runs', '--nbs', nbs),
                  f'run {run_dir.name} is being run by process {first.pid}', f'kill {first.pid}')
    _one_line(_cli('report', run_dir), f'is being run by process {first.pid}')     # no report of a running run either
    assert not (run_dir / 'report.md').exists()
    (run_dir / 'notebooks' / 'release').write_text('')          # let the first process finish its notebook
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert json.loads((run_dir / 'run.json').read_text())['status'] == 'finished'


# --- case 4: a run edits nothing but its run folder; publishing is explicit ----------------------------------------------

def _copy_checkout(tmp_path):
    copy = tmp_path / 'repo'
    shutil.copytree(CLI_ROOT, copy, ignore=shutil.ignore_patterns('.venv', '.git', 'assets', 'runs', '_proc', 'build', 'dist',
                                                                  '*.egg-info', '__pycache__', '.pytest_cache'))
    return copy


def _snapshot(root):
    "Every file under `root` but runs/ and __pycache__, with its size and mtime."
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob('*')
            if p.is_file() and 'runs' not in p.relative_to(root).parts[:1] and '__pycache__' not in p.parts}


def test_studio_run_leaves_the_checkout_untouched(tmp_path, nbs):
    "After `make reproduce`, `git status` showed README.md and data/last_studio_run.* modified by the run."
    copy = _copy_checkout(tmp_path)
    before = _snapshot(copy)
    proc = _cli('reproduce', '--profile', 'studio', '--only', 'alpha', 'beta', '--nbs', nbs, cwd=copy,
                env={**CLI_ENV, 'PYTHONPATH': str(copy)})
    assert proc.returncode == 0, proc.stderr
    run_dir, = _runs(copy / 'runs')                             # the default --out: the checkout's runs/
    assert json.loads((run_dir / 'run.json').read_text())['status'] == 'finished'
    assert _snapshot(copy) == before                           # README.md, data/ and everything else unchanged


def _fake_run(runs, run_id, notebooks, **changes):
    "A run folder as the runner leaves it, written by hand (its results hold every row the README shows)."
    from crossmodal.run.readme import required_keys
    run_dir = runs / run_id; run_dir.mkdir(parents=True)
    state = dict(run_id=run_id, profile='studio', seed=0, parameters={}, only=[], status='finished', versions={'python': '3'},
                 machine='2 CPU cores (x86_64)', started='2026-01-01T10:00:00', finished='2026-01-01T10:30:00',
                 notebooks={nb.stem: {'status': 'finished', 'seconds': 1.0} for nb in notebooks})
    (run_dir / 'run.json').write_text(json.dumps({**state, **changes}))
    rows = [(*key, 0.5 + i, 'studio', 0) for i, key in enumerate(required_keys())]   # the headlines' keys first
    pd.DataFrame(rows, columns=['section', 'experiment', 'system', 'metric', 'value', 'profile', 'seed']).to_csv(
        run_dir / 'results.csv', index=False)
    (run_dir / 'cache_use.jsonl').write_text('{"stage": "embeddings mfcc", "hits": 9, "misses": 0}\n')
    return run_dir


@pytest.mark.parametrize('changes, fragments', [
    (dict(status='failed'), ['is failed, not finished', 'crossmodal reproduce --resume']),
    (dict(status='running'), ['is running, not finished']),
    (dict(profile='tiny'), ["used profile 'tiny'", 'the README shows a studio run']),
    (dict(only=['ontology']), ['is partial', '--only ontology', 'every section notebook']),
    (dict(parameters={'pair_noise': 0.5}), ["parameters {'pair_noise': 0.5}", 'publish a run with the defaults']),
    (dict(seed=3), ['seed 3', 'publish a run with the defaults'])], ids=['failed', 'running', 'tiny', 'only', 'params', 'seed'])
def test_publish_refuses_runs_that_are_not_the_studio_run(tmp_path, changes, fragments):
    "`crossmodal publish` of an unfinished, non-studio, partial or non-default run: one line, no file changed."
    from crossmodal.run.sections import find_notebooks
    copy = _copy_checkout(tmp_path)
    run_dir = _fake_run(copy / 'runs', 'r1', find_notebooks(copy / 'nbs'), **changes)
    before = _snapshot(copy)
    _one_line(_cli('publish', 'r1', cwd=copy, env={**CLI_ENV, 'PYTHONPATH': str(copy)}), 'not published: run r1', *fragments)
    assert _snapshot(copy) == before


def test_publish_writes_the_readme_from_the_run(tmp_path):
    "`crossmodal publish RUN` is the one way to refresh the README's results; it states the cache use the run measured."
    from crossmodal.run.sections import find_notebooks
    copy = _copy_checkout(tmp_path)
    run_dir = _fake_run(copy / 'runs', 'r1', find_notebooks(copy / 'nbs'))
    proc = _cli('publish', run_dir, cwd=copy, env={**CLI_ENV, 'PYTHONPATH': str(copy)})
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr
    assert (copy / 'data' / 'last_studio_run.csv').read_bytes() == (run_dir / 'results.csv').read_bytes()
    meta = json.loads((copy / 'data' / 'last_studio_run.json').read_text())
    assert meta['run_id'] == 'r1' and meta['minutes'] == 30.0
    assert meta['cache_use'] == [{'stage': 'embeddings mfcc', 'hits': 9, 'misses': 0, 'state': 'warm'}]
    readme = (copy / 'README.md').read_text()
    assert 'Run `r1`, 30.0 minutes on 2 CPU cores (x86_64), with every cache warm.' in readme
    from crossmodal.run.readme import readme_keys
    headline = readme.split('### Headline numbers')[1]
    assert all(f' {0.5 + i:g} ' in headline for i in range(len(readme_keys())))   # every headline row, from the run


def test_publish_outside_a_checkout(tmp_path):
    "`crossmodal publish` writes a checkout's files: with no checkout (the package alone, as installed) it says so."
    shutil.copytree(CLI_ROOT / 'crossmodal', tmp_path / 'pkg' / 'crossmodal', ignore=shutil.ignore_patterns('__pycache__'))
    _one_line(_cli('publish', 'r1', cwd=tmp_path, env={**CLI_ENV, 'PYTHONPATH': str(tmp_path / 'pkg')}),
              '`crossmodal publish` works in a crossmodal checkout', 'run it inside a clone')


def test_report_states_the_cache_use_the_run_measured(tmp_path):
    "'warm'/'cold' was assumed; now the kernels see CROSSMODAL_RUN_DIR and the report shows what the stages counted."
    folder = tmp_path / 'nbs'; folder.mkdir()
    _section_notebook(folder / '01_cached.ipynb', "from crossmodal.core import note_cache_use\n"
                      "note_cache_use('demo embeddings', hits=3, misses=0)\nnote_cache_use('demo weights', hits=0, misses=1)")
    proc = _cli('reproduce', '--profile', 'tiny', '--out', tmp_path / 'runs', '--nbs', folder)
    assert proc.returncode == 0, proc.stderr
    run_dir, = _runs(tmp_path / 'runs')
    report = (run_dir / 'report.md').read_text()
    assert 'the run ran with caches partly warm (recomputed in: demo weights).' in report
    assert 'demo embeddings' in report and 'cold' in report
    assert 'partly warm' in (run_dir / 'report.html').read_text()


# --- case 5: argparse's errors point at the right --help ----------------------------------------------------------------

def test_parser_errors_name_the_right_help():
    "The one-line parser error said 'see `crossmodal crossmodal --help`'."
    _one_line(_cli('frobnicate'), "invalid choice: 'frobnicate'", '(see `crossmodal --help`)')
    _one_line(_cli('reproduce', '--bogus'), 'unrecognized arguments: --bogus', '(see `crossmodal reproduce --help`)')
    _one_line(_cli('reproduce', '--seed', 'abc'), "invalid int value: 'abc'", '(see `crossmodal reproduce --help`)')
    _one_line(_cli(), 'the following arguments are required: command', '(see `crossmodal --help`)')
    assert 'crossmodal crossmodal' not in _cli('frobnicate').stderr


# --- case 6: the section notebooks' dataflow declarations -----------------------------------------------------------------

def _declare(path, **lists):
    "Add a dataflow cell (`reads = [...]` etc.) after the parameters cell of the section notebook at `path`."
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell('#| hide\n' + '\n'.join(f'{k} = {v!r}' for k, v in lists.items())))
    nbformat.write(nb, path)


def test_declared_input_no_notebook_writes(tmp_path, nbs):
    "A notebook reading an artifact no section notebook writes (a typo): one line naming it and what is written, no run."
    _declare(nbs / '01_alpha.ipynb', writes=['selection.json'])
    _declare(nbs / '02_beta.ipynb', reads=['selection.jsn'])
    _one_line(_cli('reproduce', '--profile', 'tiny', '--out', tmp_path / 'runs', '--nbs', nbs),
              "notebook 'beta' reads 'selection.jsn', which no section notebook writes (written: 'selection.json')", '`writes`')
    assert not (tmp_path / 'runs').exists()


def test_dataflow_cycle(tmp_path, nbs):
    "Two notebooks each reading what the other writes: one line naming the cycle and the declarations, no run."
    _declare(nbs / '01_alpha.ipynb', reads=['y'], writes=['x'])
    _declare(nbs / '02_beta.ipynb', reads=['x'], writes=['y'])
    _one_line(_cli('reproduce', '--profile', 'tiny', '--out', tmp_path / 'runs', '--nbs', nbs),
              'in a cycle, alpha → beta → alpha', "alpha reads 'y' from beta; beta reads 'x' from alpha")
    assert not (tmp_path / 'runs').exists()


def test_declaration_that_is_not_a_literal(tmp_path, nbs):
    "A dataflow cell that computes its lists would have to be run to be read: refused, naming the line."
    nb = nbformat.read(nbs / '02_beta.ipynb', as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("reads = ['x']\nwrites = [f'{profile}.csv']"))
    nbformat.write(nb, nbs / '02_beta.ipynb')
    _one_line(_cli('list', '--nbs', nbs), "notebook 'beta': its dataflow cell may only assign", 'line 2 does something else')


def test_only_adds_what_the_notebook_reads(tmp_path, nbs):
    "`--only beta` where beta reads alpha's output: alpha runs first, in the same run, and one line says so."
    _declare(nbs / '01_alpha.ipynb', writes=['x'])
    _declare(nbs / '02_beta.ipynb', reads=['x'])
    proc = _cli('reproduce', '--profile', 'tiny', '--only', 'beta', '--out', tmp_path / 'runs', '--nbs', nbs)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == 'crossmodal: --only beta also runs alpha (beta reads its x)'
    run_dir, = _runs(tmp_path / 'runs')
    assert pd.read_csv(run_dir / 'results.csv').section.tolist() == ['alpha', 'beta']


# --- case 7: what already worked keeps working ----------------------------------------------------------------------------

def test_unknown_profile(tmp_path, nbs):
    "`--profile huge`: one line listing the profiles, no run directory."
    _one_line(_cli('reproduce', '--profile', 'huge', '--out', tmp_path / 'runs', '--nbs', nbs),
              "unknown profile 'huge'", 'choose one of tiny, studio, paper')
    assert not (tmp_path / 'runs').exists()


def test_unknown_notebook(tmp_path, nbs):
    "`--only gamma`: one line listing the section notebooks, no run directory."
    _one_line(_cli('reproduce', '--profile', 'tiny', '--only', 'gamma', '--out', tmp_path / 'runs', '--nbs', nbs),
              "unknown notebook 'gamma'", 'section notebooks: alpha, beta, slow')
    assert not (tmp_path / 'runs').exists()


def test_malformed_parameter(tmp_path, nbs):
    "`-p scale` (no '='): one line with an example of the right form, no run directory."
    _one_line(_cli('reproduce', '--profile', 'tiny', '-p', 'scale', '--out', tmp_path / 'runs', '--nbs', nbs),
              "malformed parameter 'scale'", 'e.g. -p pair_noise=0.2')
    assert not (tmp_path / 'runs').exists()


def test_unwritable_out(tmp_path, nbs):
    "`--out` under a file: one line naming the folder and --out, nothing created."
    blocker = tmp_path / 'a-file'; blocker.write_text('')
    _one_line(_cli('reproduce', '--profile', 'tiny', '--out', blocker / 'runs', '--nbs', nbs),
              f'cannot write to output directory {blocker / "runs"}', 'choose another with --out')


def test_missing_notebook_folder(tmp_path):
    "`--nbs` that does not exist: one line naming it."
    _one_line(_cli('reproduce', '--profile', 'tiny', '--nbs', tmp_path / 'nope', '--out', tmp_path / 'runs'),
              f'notebook folder {tmp_path / "nope"} does not exist', '--nbs')


def test_report_of_no_such_run(tmp_path):
    "`crossmodal report nosuch`: one line, not a traceback."
    _one_line(_cli('report', 'nosuch', '--out', tmp_path), "no run 'nosuch'", f'ls {tmp_path}')


def test_failing_notebook_names_notebook_and_cell_and_resume_works(tmp_path, nbs):
    "A raising cell stops the run with the notebook, the cell and the partial output; --resume after a fix finishes it."
    _section_notebook(nbs / '02_beta.ipynb', "import os\nif not os.path.exists('fixed'): raise RuntimeError('beta broke')",
                               _RECORD.format(sec='beta'), parameters='scale = 1')
    proc = _cli('reproduce', '--profile', 'tiny', '--only', 'alpha', 'beta', '--out', tmp_path / 'runs', '--nbs', nbs)
    run_dir, = _runs(tmp_path / 'runs')
    _one_line(proc, "notebook 'beta' failed in cell 3 ('import os'): RuntimeError: beta broke",
              f"partial output: {run_dir.resolve() / 'notebooks' / '02_beta.ipynb'}", f'--resume {run_dir.name}')
    state = _not_finished_looking(run_dir, 'failed')
    assert {k: v['status'] for k, v in state['notebooks'].items()} == {'01_alpha': 'finished', '02_beta': 'failed'}
    (run_dir / 'notebooks' / 'fixed').write_text('')           # the kernel's working folder is the run's notebooks/
    proc = _cli('reproduce', '--resume', run_dir.name, '--out', tmp_path / 'runs', '--nbs', nbs)
    assert proc.returncode == 0, proc.stderr
    assert '1 notebook(s) already finished' in proc.stdout
    assert json.loads((run_dir / 'run.json').read_text())['status'] == 'finished'


def test_one_seed_gives_identical_results(tmp_path):
    "Two tiny runs with the same seed give byte-identical results tables; another seed gives another table."
    folder = tmp_path / 'nbs'; folder.mkdir()
    _section_notebook(folder / '01_random.ipynb',
                      "import numpy as np, torch\nfrom crossmodal.core import Results, seed_everything\nseed_everything(seed)\n"
                      "r = Results('random', profile, seed, run_dir)\n"
                      "r.record('draws', 'numpy', 'uniform', np.random.rand())\nr.record('draws', 'torch', 'normal', torch.randn(1).item())")
    tables = []
    for seed in [5, 5, 6]:
        out = tmp_path / f'runs-{len(tables)}'
        proc = _cli('reproduce', '--profile', 'tiny', '--seed', seed, '--out', out, '--nbs', folder)
        assert proc.returncode == 0, proc.stderr
        tables.append((_runs(out)[0] / 'results.csv').read_bytes())
    assert tables[0] == tables[1] and tables[0] != tables[2]


# ==== the data stage =================================================================================================

@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    "A private data home (and no run folder) for every case: the catalogue never touches the user's cache."
    monkeypatch.setenv('CROSSMODAL_HOME', str(tmp_path / 'home'))
    monkeypatch.delenv('CROSSMODAL_RUN_DIR', raising=False)
    return tmp_path / 'home'


def _files(root, manifest) -> dict:
    return {p: (Path(root) / p).read_bytes() for p in manifest.path}


def test_damaged_rendered_wav_is_rendered_again(tmp_path, capsys):
    """Case: "delete it and render again" is a dead end for a corrupt rendered WAV — the cached manifest was
    returned and the next error was 'file does not exist'. Now a truncated, a garbled and a deleted clip are
    found by their checksums, named in one line and rendered again, with the bytes they had."""
    from crossmodal.core import get_profile, file_sha256
    from crossmodal.data.studio.audio import render_studio_audio
    from crossmodal.data.manifest import load_audio
    P = get_profile('tiny', pitches_per_instrument=2, phrases_per_instrument=1, max_items=None)
    first = render_studio_audio(P, 0, ['violin', 'Fl'], root=tmp_path, n_jobs=1, verbose=False)
    root = Path(first.attrs['root'])
    before = _files(root, first)
    cut, garbled, gone = first.path[0], first.path[3], first.path[len(first) - 1]
    (root / cut).write_bytes((root / cut).read_bytes()[:700])              # truncated
    data = bytearray((root / garbled).read_bytes()); data[2000:2100] = bytes(100)
    (root / garbled).write_bytes(bytes(data))                              # same size, other bytes
    (root / gone).unlink()                                                 # deleted
    capsys.readouterr()
    again = render_studio_audio(P, 0, ['violin', 'Fl'], root=tmp_path, verbose=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    assert f'3 of {len(first)} rendered clips' in lines[0] and lines[0].endswith('re-rendering them')
    assert all(Path(p).name in lines[0] for p in (cut, garbled, gone))
    assert _files(root, again) == before                                  # identical bytes (same seed)
    assert all(file_sha256(root / p) == digest for p, digest in zip(again.path, again.sha256))
    pd.testing.assert_frame_equal(again, first)
    for p in (cut, garbled, gone): load_audio(root / p)                   # usable again


def test_damaged_rendered_png_is_rendered_again(tmp_path, capsys):
    """Case: "delete it and render again" is a dead end for a corrupt rendered PNG. Now an image of garbage
    bytes and a deleted one are found by their checksums, named in one line and rendered again, with the
    bytes they had."""
    from crossmodal.core import get_profile, file_sha256
    from crossmodal.data.studio.images import render_images
    from crossmodal.data.manifest import load_image
    P = get_profile('tiny', augmentations_per_drawing=2, image_size=32, max_items=None)
    kw = dict(sets=['openmoji', 'twemoji', 'game-icons'], classes=['violin', 'trumpet'], root=tmp_path, verbose=False)
    first = render_images(P, seed=0, **kw)
    folder = Path(first.attrs['root'])
    before = _files(folder, first)
    garbage, gone = first.path[1], first.path[len(first) - 2]
    (folder / garbage).write_bytes(os.urandom(300))
    (folder / gone).unlink()
    capsys.readouterr()
    again = render_images(P, seed=0, **kw)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    assert f'2 of {len(first)} rendered images' in lines[0] and lines[0].endswith('re-rendering them')
    assert Path(garbage).name in lines[0] and Path(gone).name in lines[0]
    assert _files(folder, again) == before
    assert all(file_sha256(folder / p) == digest for p, digest in zip(again.path, again.sha256))
    pd.testing.assert_frame_equal(again, first)
    for p in (garbage, gone): load_image(folder / p)


def test_damaged_render_never_returned_unverified(tmp_path):
    """Case: a cached render's manifest pointed at a missing file. `read_manifest` of a damaged render now
    raises, naming the file and the call that renders it again, instead of returning the manifest."""
    from crossmodal.core import get_profile
    from crossmodal.data.manifest import read_manifest
    from crossmodal.data.studio.audio import render_studio_audio
    P = get_profile('tiny', pitches_per_instrument=2, phrases_per_instrument=0, max_items=None)
    m = render_studio_audio(P, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    (Path(m.attrs['root']) / m.path[1]).unlink()
    with pytest.raises(ValueError, match='missing or damaged') as e: read_manifest(m.attrs['root'])
    assert Path(m.path[1]).name in str(e.value) and 'render_studio_audio' in str(e.value)


def test_missing_soundfont_path_says_file_not_found(tmp_path):
    """Case: a missing SoundFont *path* was reported as 'unknown SoundFont'; it now says file not found,
    naming the path. An unknown *name* keeps 'unknown SoundFont' with the known names."""
    from crossmodal.data.studio.instruments import find_soundfont
    from crossmodal.data.studio.audio import SoundFontSynth
    missing = tmp_path / 'fonts' / 'Mine.sf2'
    for name in (str(missing), 'Mine.sf3', str(tmp_path / 'fonts' / 'Mine')):  # a folder in it, or an .sf2/.sf3 ending
        with pytest.raises(FileNotFoundError) as e: find_soundfont(name)
        assert f'SoundFont file {name} not found' in str(e.value) and 'unknown' not in str(e.value)
    with pytest.raises(FileNotFoundError, match='Mine.sf2 not found'): SoundFontSynth(str(missing), 16000)
    with pytest.raises(ValueError, match="unknown SoundFont 'Yamaha'; known: FluidR3_GM, MuseScore_General, TimGM6mb"):
        find_soundfont('Yamaha')


def test_pictonet_weights_hint_has_balanced_backticks(tmp_path):
    """Case: unbalanced backtick in the missing-pictonet-weights hint. Missing, damaged and unreadable weights
    each name one command, quoted whole: exactly two backticks, even when the underlying error (torch's)
    carries backticks of its own."""
    from crossmodal.core import get_profile, file_sha256
    from crossmodal.embedders.pictonet import load_pictonet, weights_dir, CorruptWeights
    P, command = get_profile('tiny'), 'python -m crossmodal.embedders.pictonet --profile tiny --seed 0'
    def hint(error_type):
        with pytest.raises(error_type) as e: load_pictonet(P, 0, root=tmp_path, train_if_missing=False)
        message = str(e.value)
        assert message.count('`') == 2, message
        return message.split('`')[1]
    assert hint(FileNotFoundError) == command                                   # no weights at all
    folder = weights_dir(P, 0, tmp_path); folder.mkdir(parents=True)
    (folder / 'pictonet.pt').write_bytes(b'not a state dict')
    (folder / 'pictonet.json').write_text(json.dumps(dict(sha256='0' * 64)))
    assert hint(CorruptWeights) == command                                      # checksum mismatch: the plain command retrains
    (folder / 'pictonet.json').write_text(json.dumps(dict(sha256=file_sha256(folder / 'pictonet.pt'))))
    assert hint(CorruptWeights) == command + ' --force'                         # unreadable despite its checksum


# ==== the embedders stage ============================================================================================

@pytest.fixture
def weights_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('CROSSMODAL_WEIGHTS', str(tmp_path / 'weights'))   # an empty default folder
    return tmp_path


def test_explicit_weights_file_is_the_one_checked(weights_folder):
    "get_embedder('yamnet', weights=<an existing file>) must not say 'not found (looked in: <default folder>)'."
    with pytest.raises(RuntimeError, match=r"weights file 'yamnet.h5' not found \(looked in: .*weights/yamnet/yamnet.h5"):
        get_embedder('yamnet')
    given = weights_folder / 'elsewhere' / 'yamnet.h5'; given.parent.mkdir(); given.write_bytes(b'x')
    assert YAMNet.why_not(weights=given) == keras_ready()              # the file given counts as present
    assert 'not found' in YAMNet.why_not(weights=weights_folder / 'nope.h5')
    if keras_ready() is None:
        with pytest.raises(DamagedWeightsError) as caught: get_embedder('yamnet', weights=given)
        assert 'looked in' not in str(caught.value) and str(given) in str(caught.value)   # past availability, to the file


@pytest.mark.skipif(keras_ready() is not None, reason='needs keras and h5py (the dev extra)')
@pytest.mark.parametrize('name, filename', [('yamnet', 'yamnet.h5'), ('resnet50', 'resnet50.h5'),
                                            ('openl3_image', 'openl3_image.h5')])
def test_damaged_weights_file_names_the_file_and_the_remedy(weights_folder, name, filename):
    "A corrupt weights file gave a bare h5py OSError with no path."
    junk = weights_folder / filename; junk.write_bytes(b'\x89HDF\r\n\x1a\n but cut short')
    with pytest.raises(DamagedWeightsError) as caught: get_embedder(name, weights=junk)
    message = str(caught.value)
    assert message.startswith(f'crossmodal: ') and str(junk) in message and 'delete it and download it again' in message
    assert '\n' not in message


class MeanPixel(Embedder):
    name, modality, dim, image_size = 'test_mean_pixel', 'image', 1, 32
    def _embed(self, batch): return np.array([[np.asarray(img).mean()] for img in batch], np.float32)


def test_one_pixel_png_is_embedded_with_a_warning(tmp_path, capsys):
    "A 1 × 1 PNG was embedded silently."
    Image.new('RGB', (1, 1), 'red').save(tmp_path / 'dot.png'); Image.new('RGB', (48, 48), 'blue').save(tmp_path / 'ok.png')
    manifest = pd.DataFrame(dict(id=['dot', 'ok'], path=['dot.png', 'ok.png']))
    with pytest.warns(UserWarning, match=r'1 image\(s\) under 16 px a side.*dot'):
        MeanPixel().embed([Image.open(tmp_path / 'dot.png'), Image.open(tmp_path / 'ok.png')], ids=['dot', 'ok'])
    embed_manifest(MeanPixel(), manifest, tmp_path, cache=tmp_path / 'cache', progress=False)
    assert '1 image(s) under 16 px a side embedded' in capsys.readouterr().out


class Sum(Embedder):
    name, modality, dim, sample_rate = 'test_sum', 'audio', 2, 8000
    def _embed(self, batch): return np.array([[x.sum(), len(x)] for x in batch], np.float32)


def test_altered_but_valid_cache_entry_is_recomputed_not_served(tmp_path, capsys):
    "Cached entries carried no checksum, so an altered but valid-looking entry was served."
    for i in range(3): soundfile.write(tmp_path / f'c{i}.wav', np.full(800, 0.1 * (i + 1), np.float32), 8000)
    manifest = pd.DataFrame(dict(id=['c0', 'c1', 'c2'], path=['c0.wav', 'c1.wav', 'c2.wav']))
    first = embed_manifest(Sum(), manifest, tmp_path, cache=tmp_path / 'cache', progress=False)
    entry, = EmbeddingEntries(embedding_cache_dir(Sum(), tmp_path / 'cache')).files(content_hash(tmp_path / 'c1.wav'))
    with open(entry, 'wb') as f: np.save(f, np.array([7.0, 7.0], np.float32))   # right shape, dtype, finite
    again, stats = embed_manifest(Sum(), manifest, tmp_path, cache=tmp_path / 'cache', progress=False, return_stats=True)
    np.testing.assert_array_equal(again, first)
    assert (stats['damaged'], stats['computed']) == (1, 1)
    assert '1 damaged cache file(s) recomputed' in capsys.readouterr().out


SLOW_EXTRACTION = textwrap.dedent('''
    import sys, time
    import numpy as np, pandas as pd
    sys.path.insert(0, sys.argv[1])
    from slow_embedder import Slow
    from crossmodal.embedders.cache import embed_manifest
    folder = sys.argv[1]
    manifest = pd.DataFrame(dict(id=[f'c{i}' for i in range(40)], path=[f'c{i}.wav' for i in range(40)]))
    out = embed_manifest(Slow(), manifest, folder, batch_size=4, cache=folder + '/cache', progress=False)
    np.save(folder + '/uninterrupted.npy', out)
''')
SLOW_EMBEDDER = textwrap.dedent('''
    import time
    import numpy as np
    from crossmodal.embedders.base import Embedder
    class Slow(Embedder):
        name, modality, dim, sample_rate = 'test_slow', 'audio', 3, 8000
        def _embed(self, batch):
            time.sleep(0.25)
            return np.array([[x.sum(), x.std(), len(x)] for x in batch], np.float32)
''')


def test_kill_9_during_extraction_leaves_no_entry_that_is_read_and_resumes_identically(tmp_path):
    "kill -9 in the middle of embed_manifest: no corrupt entry is ever read; the resumed array equals an uninterrupted one."
    rng = np.random.default_rng(0)
    for i in range(40): soundfile.write(tmp_path / f'c{i}.wav', rng.uniform(-.5, .5, 800 + 10 * i).astype(np.float32), 8000)
    (tmp_path / 'slow_embedder.py').write_text(SLOW_EMBEDDER)
    proc = subprocess.Popen([sys.executable, '-c', SLOW_EXTRACTION, str(tmp_path)], env={**os.environ, 'CROSSMODAL_QUIET': '1'})
    items = tmp_path / 'cache'
    deadline = time.time() + 120
    while time.time() < deadline and len(list(items.rglob('*.npy'))) < 8: time.sleep(0.05)
    proc.send_signal(signal.SIGKILL); proc.wait()
    written = len(list(items.rglob('*.npy')))
    assert 8 <= written < 40, written                                  # killed in the middle, as intended
    sys.path.insert(0, str(tmp_path))
    try:
        from slow_embedder import Slow
        manifest = pd.DataFrame(dict(id=[f'c{i}' for i in range(40)], path=[f'c{i}.wav' for i in range(40)]))
        resumed, stats = embed_manifest(Slow(), manifest, tmp_path, batch_size=4, cache=items, progress=False, return_stats=True)
        fresh = embed_manifest(Slow(), manifest, tmp_path, batch_size=40, cache=False, progress=False)
    finally: sys.path.remove(str(tmp_path))
    assert stats['damaged'] == 0 and stats['cached'] == written and stats['computed'] == 40 - written
    np.testing.assert_array_equal(resumed, fresh)


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_respects_the_umask(tmp_path, umask, mode):
    "Every file written by atomic_write was mode 0600 whatever the umask."
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / 'f.txt') as tmp: tmp.write_text('x')
    finally: os.umask(old)
    assert (tmp_path / 'f.txt').stat().st_mode & 0o777 == mode


# --- inputs that already gave a clear error or were handled, kept that way ----------------------------------------

SR = 22050

def _tone(freq=440.0, seconds=1.0, sr=SR, amp=0.3):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


@pytest.fixture
def wav_folder(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(7): soundfile.write(tmp_path / f'c{i}.wav', rng.uniform(-.5, .5, 3000 + 250 * i).astype(np.float32), 8000)
    return tmp_path, pd.DataFrame(dict(id=[f'c{i}' for i in range(7)], path=[f'c{i}.wav' for i in range(7)], modality='audio'))


def test_8khz_audio_is_resampled_not_rejected():
    "Audio at another rate (8 or 16 kHz) is resampled to the embedder's rate."
    mfcc = get_embedder('mfcc')
    native, from_16k = mfcc.embed([(_tone(sr=SR), SR)])[0], mfcc.embed([(_tone(sr=16000), 16000)])[0]
    np.testing.assert_allclose(from_16k[:20], native[:20], atol=1.5)  # MFCC means: same tone, same envelope
    assert np.isfinite(mfcc.embed([(_tone(sr=8000), 8000)])).all()


def test_stereo_is_downmixed_and_transposed_audio_named():
    "Stereo (channels, samples) is averaged to mono; (samples, channels) gets a message saying how to fix it."
    emb = get_embedder('classical_audio')
    np.testing.assert_array_equal(emb.embed([(np.stack([_tone(), _tone()]), SR)]), emb.embed([(_tone(), SR)]))
    with pytest.raises(ValueError, match=r'looks like \(samples, channels\).*samples.T'): emb.embed([(np.stack([_tone()] * 2).T, SR)])


def test_short_audio_is_padded_and_stated(wav_folder, capsys):
    "A clip shorter than the embedder's minimum is zero-padded, and that is said (one summary line over a manifest)."
    with pytest.warns(UserWarning, match=r"zero-padded 1 clip\(s\) shorter than 0.1 s: short_one"):
        get_embedder('mfcc').embed([(_tone(seconds=0.02), SR), (_tone(), SR)], ids=['short_one', 'long_one'])
    folder, manifest = wav_folder
    class Padding(Sum): name, min_seconds = 'test_padding', 1.0
    embed_manifest(Padding(), manifest, folder, batch_size=2, cache=False, progress=False)
    assert 'test_padding: 7 clip(s) shorter than 1.0 s zero-padded' in capsys.readouterr().out


@pytest.mark.parametrize('samples, match', [(np.zeros(0, np.float32), 'bad_clip: the audio is empty'),
                                            (np.array([0.1, np.nan, 0.2], np.float32), 'bad_clip: the audio holds 1 NaN'),
                                            (np.array([0.1, np.inf], np.float32), 'bad_clip: the audio holds 1 NaN or infinite')])
def test_empty_or_nan_audio_names_the_item(samples, match):
    "Empty, NaN or infinite samples: the error names the item."
    with pytest.raises(ValueError, match=match): get_embedder('mfcc').embed([(_tone(), SR), (samples, SR)], ids=['fine', 'bad_clip'])


def test_nan_audio_file_in_a_manifest_names_the_item(wav_folder):
    "A WAV file holding NaN, met while embedding a manifest: the error names the manifest item."
    folder, manifest = wav_folder
    soundfile.write(folder / 'c3.wav', np.array([0.1, np.nan] * 100, np.float32), 8000, subtype='FLOAT')
    with pytest.raises(ValueError, match="manifest item 'c3'.*NaN"): embed_manifest(Sum(), manifest, folder, cache=False, progress=False)


def test_corrupt_empty_and_silent_audio_files_name_the_file(tmp_path):
    "A corrupt, an empty (0-byte) and a silent WAV: each error names the file."
    from crossmodal.data.manifest import load_audio
    (tmp_path / 'corrupt.wav').write_bytes(b'RIFF....WAVEfmt garbage'); (tmp_path / 'zero.wav').write_bytes(b'')
    soundfile.write(tmp_path / 'silent.wav', np.zeros(1600, np.float32), 16000)
    for name in ('corrupt.wav', 'zero.wav', 'silent.wav'):
        with pytest.raises(ValueError, match=name.split('.')[0]): load_audio(tmp_path / name)


def test_rgba_palette_grayscale_and_16_bit_images_become_rgb():
    "RGBA (transparency on white paper), palette, grayscale and 16-bit images are converted, not rejected."
    emb = get_embedder('colour_hist')
    white = Image.new('RGB', (64, 64), (255, 255, 255))
    np.testing.assert_array_equal(emb.embed([Image.new('RGBA', (50, 40), (10, 200, 30, 0)), Image.new('L', (64, 64), 255)]),
                                  emb.embed([white, white]))
    palette = Image.new('P', (64, 64)); palette.putpalette([255, 0, 0] * 256)
    assert get_embedder('hog_colour').embed([palette, Image.new('I;16', (30, 30), 1000)]).shape == (2, 1828)


def test_corrupt_image_names_the_item_and_file(tmp_path):
    "A truncated PNG in a manifest: the error names the item and the file."
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated'); Image.new('RGB', (32, 32), 'blue').save(tmp_path / 'ok.png')
    manifest = pd.DataFrame(dict(id=['fine', 'drawing_7'], path=['ok.png', 'broken.png'], modality='image'))
    with pytest.raises(ValueError, match=r"manifest item 'drawing_7'.*broken.png.*corrupt"):
        embed_manifest('hog', manifest, tmp_path, cache=False, progress=False)


def test_missing_file_and_wrong_modality(wav_folder):
    "A manifest row whose file is missing; audio rows given to an image embedder."
    folder, manifest = wav_folder
    with pytest.raises(FileNotFoundError, match="'c9'.*does not exist"):
        embed_manifest(Sum(), pd.DataFrame(dict(id=['c9'], path=['c9.wav'])), folder, progress=False, cache=folder / 'cache')
    with pytest.raises(ValueError, match='embeds image, but item'): embed_manifest('hog', manifest, folder, progress=False)


def test_unknown_embedder_lists_the_registered_ones():
    "An unknown embedder name: the error lists the registered names."
    with pytest.raises(KeyError, match="unknown embedder 'nope'; registered: .*mfcc"): get_embedder('nope')


NO_NETWORK = textwrap.dedent('''
    import socket
    def refuse(*args, **kwargs): raise AssertionError(f'network access attempted: {args}')
    socket.socket.connect = socket.socket.connect_ex = refuse
    socket.create_connection = socket.getaddrinfo = refuse
    import numpy as np
    from PIL import Image
    from crossmodal.embedders.base import available_embedders, get_embedder
    import importlib, pkgutil, crossmodal
    for module in pkgutil.walk_packages(crossmodal.__path__, 'crossmodal.'):   # every module imports
        if not module.name.endswith('__main__'): importlib.import_module(module.name)
    table = available_embedders()
    used = []
    for row in table[table.available & table.modality.notna()].itertuples():
        emb = get_embedder(row.name)
        x = {'audio': [(np.zeros(16000, np.float32) + 0.01, 16000)], 'image': [Image.new('RGB', (64, 64), 'red')],
             'text': ['a violin']}[row.modality]
        assert emb.embed(x).shape == (1, emb.dim); used.append(row.name)
    for name in ('vggish', 'resnet50'):
        get_embedder(name, weights='random')   # the paper models build without fetching anything
    print(len(used))
''')


def test_no_network_access_anywhere(tmp_path):
    "Importing every module and embedding with every available embedder (and building paper models with random weights) opens no connection."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'CROSSMODAL_QUIET': '1', 'CROSSMODAL_HOME': str(tmp_path / 'home')}
    env.pop('CROSSMODAL_RUN_DIR', None)
    proc = subprocess.run([sys.executable, '-c', NO_NETWORK], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.strip().splitlines()[-1]) >= 10   # the classical, musicnn and MiniLM embedders at least

