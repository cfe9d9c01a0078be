"""`crossmodal docs`: the static site of the notebooks, built from a finished run and opened in headless Chromium with
the network blocked — every page renders, no request fails or leaves the machine, every image loads, nothing
overflows, and no absolute path of the machine that built it appears."""
import importlib.util, json, shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from crossmodal.core import RESULT_COLUMNS, data_home, repo_root
from crossmodal.run.docs import build_docs
from crossmodal.run.folders import write_state
from crossmodal.run.page_check import check_page, why_no_browser
from crossmodal.run.report import write_report

NO_MKDOCS = importlib.util.find_spec('mkdocs_jupyter') is None
pytestmark = pytest.mark.skipif(NO_MKDOCS or why_no_browser() is not None,
                                reason='mkdocs-jupyter missing (the dev extra)' if NO_MKDOCS else f'no browser check here: {why_no_browser()}')


def _finished_run(tmp_path):
    run_dir = tmp_path / 'runs' / '20261204-000000-tiny'
    for sub in ('notebooks', 'figures', 'results'): (run_dir / sub).mkdir(parents=True)
    executed = json.loads((repo_root() / 'nbs' / '01_ontology.ipynb').read_text())
    printed = f"crossmodal: profile tiny (as given), seed 0, numbers into {run_dir.resolve()}; cache {data_home()}/studio\n"
    first_code = next(c for c in executed['cells'] if c['cell_type'] == 'code' and 'section_profile(' in ''.join(c['source']))
    first_code['outputs'] = [{'output_type': 'stream', 'name': 'stdout', 'text': [printed]}]
    (run_dir / 'notebooks' / '01_ontology.ipynb').write_text(json.dumps(executed))
    Image.new('RGB', (900, 300), 'teal').save(run_dir / 'figures' / 'audioset_relevance_hist.png')
    pd.DataFrame([('ontology', 'e', 's', 'm', 0.5, 'tiny', 0)], columns=RESULT_COLUMNS).to_csv(run_dir / 'results' / 'ontology.csv', index=False)
    write_state(run_dir, dict(run_id=run_dir.name, profile='tiny', seed=0, parameters={}, versions={'python': '3.11'}, status='finished',
                              notebooks={'01_ontology': {'status': 'finished', 'seconds': 20.0}}))
    write_report(run_dir)
    return run_dir


def test_docs_site_in_a_browser(tmp_path):
    run_dir = _finished_run(tmp_path)
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    for name in ['01_ontology', '03r_hear', 'docs_running']: shutil.copy(repo_root() / 'nbs' / f'{name}.ipynb', nbs)
    site = build_docs(run_dir, tmp_path / 'site', nbs)
    assert (site / 'index.html').exists() and not (tmp_path / '.site.building').exists()
    machine = (str(tmp_path), str(repo_root()), str(Path.home()), str(data_home()))
    for page in ['index', '01_ontology', '03r_hear', 'docs_running', 'report/index', 'api/crossmodal.embedders.hear']:
        seen = check_page(site / f'{page}.html', forbidden=machine)
        assert (seen['external'], seen['failed'], seen['broken_images'], seen['forbidden']) == ([], [], [], []), (page, seen)
        assert seen['overflow_px'] == 0, (page, seen)
    assert 'numbers into &lt;run&gt;' in (site / '01_ontology.html').read_text()        # the executed copy, its paths replaced
    assert check_page(site / 'report' / 'index.html')['images'] == 1
