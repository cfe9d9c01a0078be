"""The run's report as a reader sees it: opened in headless Chromium (Debian's, through Playwright) with the network
blocked, every figure loads from its relative path, nothing is requested from outside the machine, nothing overflows
the window, and no path of the machine that wrote it appears."""
import pandas as pd
import pytest
from PIL import Image

from crossmodal.core import RESULT_COLUMNS
from crossmodal.evaluate.claims import Claim, claims_table, judge, write_claims
from crossmodal.run.folders import write_state
from crossmodal.run.page_check import check_page, why_no_browser
from crossmodal.run.report import write_report

pytestmark = pytest.mark.skipif(why_no_browser() is not None, reason=f'no browser check here: {why_no_browser()}')


def test_report_page_in_a_browser(tmp_path):
    run_dir = tmp_path / 'runs' / 'r1'
    for sub in ('results', 'figures', 'notebooks'): (run_dir / sub).mkdir(parents=True)
    (run_dir / 'notebooks' / '01_alpha.ipynb').write_text(
        '{"cells": [{"cell_type": "code", "source": "r = Results(\'alpha\', profile, seed, run_dir)\\nsave_figure(fig, \'wide_curve\', run_dir)"}]}')
    Image.new('RGB', (3000, 400), 'teal').save(run_dir / 'figures' / 'wide_curve.png')     # wider than any window
    long_name = 'a system with a very long name ' * 12
    pd.DataFrame([('alpha', 'e', long_name, 'm', 0.5, 'tiny', 0)], columns=RESULT_COLUMNS).to_csv(run_dir / 'results' / 'alpha.csv', index=False)
    claim = Claim('translation beats PCA ' * 10, 'Wu et al. 2021, §4.2', 'supported when the gap is above 0', 'almost 70%')
    write_claims(claims_table([judge(claim, True, 'gap 0.1 [0.05, 0.2] ' * 6, 0.1, 0.05, 0.2)]), 'alpha', run_dir)
    write_state(run_dir, dict(run_id='r1', profile='tiny', seed=0, parameters={}, versions={'python': '3.11'}, status='finished',
                              notebooks={'01_alpha': {'status': 'finished', 'seconds': 2.0}}))
    _, page = write_report(run_dir)
    seen = check_page(page, screenshot=tmp_path / 'report.png', forbidden=(str(tmp_path),))
    assert seen['title'] == 'crossmodal run r1' and seen['images'] == 1
    assert (seen['external'], seen['failed'], seen['broken_images'], seen['forbidden']) == ([], [], [], [])
    assert seen['overflow_px'] == 0, seen
    assert Image.open(tmp_path / 'report.png').size == (1280, 900)
