"""Shared test fixtures. `../shared` (papers, ontologies, published numbers) is never needed at run time; tests may
compare the package's own data with it when it is there."""
import os
from pathlib import Path

import pytest

from crossmodal.core import repo_root


@pytest.fixture(scope='session')
def shared_folder() -> Path:
    "The project's shared folder (`$CROSSMODAL_SHARED` or `<checkout>/../shared`); the test is skipped without it."
    env = os.environ.get('CROSSMODAL_SHARED')
    path = Path(env) if env else repo_root().parent / 'shared'
    if not (path / 'data').is_dir(): pytest.skip(f'no shared folder at {path} to compare against')
    return path
