"""The package's house rules, checked on its source: data flows one way through the stages (core -> data -> embedders
-> spaces -> evaluate -> run), no module imports another's private names, and no module outgrows one reading."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'crossmodal'
BOTTOM = {'core', 'cluster', 'profiles', 'losses', 'training', 'neighbours', 'ontology', 'wordnet'}   # what every stage may use
STAGES = ['bottom', 'data', 'embedders', 'spaces', 'evaluate', 'run', 'main']
FACADES = {'hear': 'embedders'}   # crossmodal.hear: the embedders as HEAR modules, a stage's face for outside tools
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def stage(module: str) -> str:
    parts = module.split('.')
    if len(parts) == 1 or parts[1] in BOTTOM: return 'bottom'
    if parts[1] == '__main__': return 'main'
    return FACADES.get(parts[1], parts[1])


def imports(path: Path):
    "(imported module, imported names, line) for every import of a crossmodal module in `path`, nested ones included."
    me = module_name(path).split('.')
    package = me if path.name == '__init__.py' else me[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level: base = package[:len(package) - node.level + 1] + ([node.module] if node.module else [])
            else: base = (node.module or '').split('.')
            target = '.'.join(base)
            if target.split('.')[0] == 'crossmodal': yield target, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split('.')[0] == 'crossmodal': yield a.name, [], node.lineno


SOURCES = sorted(p for p in PACKAGE.rglob('*.py') if p.name != '_modidx.py')


def test_every_module_is_in_a_stage():
    unknown = {module_name(p) for p in SOURCES if stage(module_name(p)) not in STAGES}
    assert not unknown, f'modules outside the stages {STAGES}: {sorted(unknown)}'


@pytest.mark.parametrize('path', SOURCES, ids=[module_name(p) for p in SOURCES])
def test_imports_never_run_back_up_the_stages(path):
    mine = STAGES.index(stage(module_name(path)))
    upward = [(target, line) for target, _, line in imports(path) if STAGES.index(stage(target)) > mine]
    assert not upward, f'{module_name(path)} imports from a later stage: {upward}'


@pytest.mark.parametrize('path', SOURCES, ids=[module_name(p) for p in SOURCES])
def test_no_private_name_crosses_a_module(path):
    private = [(target, name, line) for target, names, line in imports(path) for name in names
               if name.startswith('_') and target != module_name(path)]
    assert not private, f'{module_name(path)} imports private names: {private}'


@pytest.mark.parametrize('path', SOURCES, ids=[module_name(p) for p in SOURCES])
def test_no_module_outgrows_one_reading(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f'{module_name(path)} has {n} lines (at most {MAX_LINES}): split it by idea'


def test_the_checker_sees_what_it_should(tmp_path):
    "The rules catch what they are for, on a module written here."
    bad = PACKAGE / 'data' / '_layout_probe.py'
    try:
        bad.write_text("from crossmodal.evaluate.retrieval import ndcg_at_k\nfrom ..core import _feed\n")
        assert [t for t, _, _ in imports(bad)] == ['crossmodal.evaluate.retrieval', 'crossmodal.core']
        assert stage('crossmodal.evaluate.retrieval') == 'evaluate' and stage('crossmodal.data._layout_probe') == 'data'
        with pytest.raises(AssertionError, match='imports from a later stage'): test_imports_never_run_back_up_the_stages(bad)
        with pytest.raises(AssertionError, match="private names: \\[\\('crossmodal.core', '_feed'"): test_no_private_name_crosses_a_module(bad)
    finally: bad.unlink()
