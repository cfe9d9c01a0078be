"""crossmodal away from the developer's checkout: an installed wheel run from an unrelated folder, and a fresh clone
with no `../shared` beside it. Both run the ontology section on the tiny profile end to end.

The wheel is built from a copy of the checkout (building in place would write build/ into it) and installed into a
fresh virtual environment whose only link to the project's environment is a `.pth` line naming its site-packages,
for the dependencies. A plain `.pth` line does not run the `.pth` files of the folder it names, so the project's
editable install of crossmodal stays invisible there: the environment imports the wheel's copy."""
import json, os, shutil, subprocess, sys, sysconfig, time
from pathlib import Path

import nbformat
import pytest

from crossmodal.core import repo_root

ROOT = repo_root()
IGNORED = shutil.ignore_patterns('.venv', '.git', 'assets', 'runs', '_proc', 'build', 'dist', '*.egg-info', '__pycache__',
                                 '.pytest_cache')


def _env(tmp, **extra):
    "A clean environment: HOME and CROSSMODAL_HOME in `tmp`, offline, no shared folder, no run folder."
    env = {k: v for k, v in os.environ.items() if k not in ('CROSSMODAL_SHARED', 'CROSSMODAL_RUN_DIR', 'PYTHONPATH',
                                                              'VIRTUAL_ENV', 'JUPYTER_PATH')}
    env.update(HOME=str(tmp / 'home'), CROSSMODAL_HOME=str(tmp / 'home' / 'crossmodal'), HF_HUB_OFFLINE='1',
               MPLBACKEND='Agg', CROSSMODAL_QUIET='1', **extra)
    (tmp / 'home').mkdir(exist_ok=True)
    return env


@pytest.fixture(scope='module')
def wheel_env(tmp_path_factory):
    "A fresh venv with crossmodal installed from a wheel of this checkout; returns (tmp, its python, its crossmodal)."
    tmp = tmp_path_factory.mktemp('wheel')
    started = time.time()
    shutil.copytree(ROOT, tmp / 'src', ignore=IGNORED)
    build = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(tmp / 'dist'),
                            str(tmp / 'src')], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel, = (tmp / 'dist').glob('crossmodal-*.whl')
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(tmp / 'venv')], check=True, timeout=120)
    python = tmp / 'venv' / 'bin' / 'python'
    purelib = subprocess.run([str(python), '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, 'crossmodal_test_dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    install = subprocess.run([sys.executable, '-m', 'pip', '--python', str(python), 'install', '-q', '--no-deps', str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    print(f'wheel built and installed in {time.time() - started:.1f} s')
    return tmp, python, tmp / 'venv' / 'bin' / 'crossmodal'


def test_wheel_ships_notebooks_and_package_data(wheel_env):
    "The wheel carries the section notebooks (copied at build time, not committed twice) and the package data."
    tmp, python, _ = wheel_env
    import zipfile
    names = zipfile.ZipFile(next((tmp / 'dist').glob('*.whl'))).namelist()
    shipped = {Path(n).name for n in names if n.startswith('crossmodal/notebooks/')}
    assert {p.name for p in (ROOT / 'nbs').glob('*.ipynb')} <= shipped
    assert 'crossmodal/resources/published/published.csv' in names and 'crossmodal/resources/audioset/ontology.json' in names
    assert {f'crossmodal/run/{m}.py' for m in ['__init__', 'sections', 'folders', 'report', 'reproduce', 'cli', 'readme']} <= set(names)
    assert not (ROOT / 'crossmodal' / 'notebooks').exists()          # no second copy in the source tree


def test_wheel_imports_its_own_copy(wheel_env):
    "The fresh environment imports the wheel's crossmodal, and its python3 kernel is that environment's python."
    tmp, python, _ = wheel_env
    code = ("import crossmodal, json; from jupyter_client.kernelspec import KernelSpecManager as K; "
            "print(json.dumps([crossmodal.__file__, K().get_kernel_spec('python3').argv[0]]))")
    proc = subprocess.run([str(python), '-c', code], capture_output=True, text=True, cwd=tmp, env=_env(tmp), timeout=120)
    assert proc.returncode == 0, proc.stderr
    module, kernel_python = json.loads(proc.stdout)
    assert Path(module).is_relative_to(tmp / 'venv'), module
    assert Path(kernel_python).is_relative_to(tmp / 'venv'), kernel_python


def test_wheel_lists_and_runs_outside_a_checkout(wheel_env):
    "From an unrelated folder: `crossmodal list` and `reproduce --profile tiny --only ontology` use the shipped notebooks."
    tmp, python, crossmodal = wheel_env
    work = tmp / 'elsewhere'; work.mkdir()
    env = _env(tmp)
    listed = subprocess.run([str(crossmodal), 'list'], capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert 'ontology' in listed.stdout and '01_ontology.ipynb' in listed.stdout
    started = time.time()
    run = subprocess.run([str(crossmodal), 'reproduce', '--profile', 'tiny', '--only', 'ontology', '--out', str(tmp / 'runs')],
                         capture_output=True, text=True, cwd=work, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    print(f'ontology (tiny) from the wheel: {time.time() - started:.1f} s')
    run_dir, = (tmp / 'runs').iterdir()
    assert json.loads((run_dir / 'run.json').read_text())['status'] == 'finished'
    executed = nbformat.read(run_dir / 'notebooks' / '01_ontology.ipynb', as_version=4)
    assert Path(executed.metadata.papermill.input_path).is_relative_to(tmp / 'venv')   # the wheel's own notebook ran
    report = subprocess.run([str(crossmodal), 'report', str(run_dir)], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert report.returncode == 0, report.stderr
    text = (run_dir / 'report.md').read_text()
    assert 'ISMIR 2020 metric-learning tutorial' in text and '0.77' in text     # published numbers, from the package data
    assert 'ontology' in text and 'hdio_triplets' in text
    assert not (work / 'runs').exists() and not any(work.iterdir())              # --out was given: nothing in the cwd


def test_wheel_default_out_is_runs_in_the_working_folder(wheel_env, tmp_path):
    "Outside a checkout, runs go to ./runs."
    tmp, python, crossmodal = wheel_env
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "tiny"\nseed = 0\nrun_dir = None', metadata={'tags': ['parameters']}),
                nbformat.v4.new_code_cell('import crossmodal\nassert "/venv/" in crossmodal.__file__, crossmodal.__file__')]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nbformat.write(nb, nbs / '01_where.ipynb')
    work = tmp_path / 'work'; work.mkdir()
    run = subprocess.run([str(crossmodal), 'reproduce', '--profile', 'tiny', '--nbs', str(nbs)], capture_output=True, text=True,
                         cwd=work, env=_env(tmp_path), timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    run_dir, = (work / 'runs').iterdir()
    assert json.loads((run_dir / 'run.json').read_text())['status'] == 'finished'


def test_fresh_clone_without_shared_runs_the_ontology_section(tmp_path):
    "A copy of the checkout with no ../shared beside it: `python -m crossmodal reproduce` from it, its own runs/ only."
    copy = tmp_path / 'clone'
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    assert not (copy.parent / 'shared').exists()
    before = {p.relative_to(copy) for p in copy.rglob('*') if '__pycache__' not in p.parts}
    started = time.time()
    run = subprocess.run([sys.executable, '-m', 'crossmodal', 'reproduce', '--profile', 'tiny', '--only', 'ontology'],
                         capture_output=True, text=True, cwd=copy, env=_env(tmp_path, PYTHONPATH=str(copy)), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    print(f'ontology (tiny) from a clone: {time.time() - started:.1f} s')
    run_dir, = (copy / 'runs').iterdir()
    assert json.loads((run_dir / 'run.json').read_text())['status'] == 'finished'
    executed = nbformat.read(run_dir / 'notebooks' / '01_ontology.ipynb', as_version=4)
    assert Path(executed.metadata.papermill.input_path).is_relative_to(copy)
    after = {p.relative_to(copy) for p in copy.rglob('*') if '__pycache__' not in p.parts}
    assert {p for p in after - before if p.parts[0] != 'runs'} == set()         # the run wrote only under runs/
