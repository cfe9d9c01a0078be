"""Benchmark (not a test): the time budget of the whole package on this machine, from real runs.

Give it a cold and a warm studio run made from a clean clone (a fresh `CROSSMODAL_HOME`; cold: the first
`make reproduce` after the install, warm: the one after it) and the minutes the README's test command took from a
fresh clone. It records each run's wall time, every notebook's seconds and, inside each notebook, its slowest
cells (papermill's per-cell durations, with the cell's first line: the per-stage profile), cold and warm, in
bench/results/studio_budget.json, which the README's time table is rendered from (`crossmodal readme`).

    python bench/studio_budget.py --cold RUN_DIR --warm RUN_DIR [--install-minutes M] [--test-minutes M] [--note TEXT]
"""
import argparse, datetime, json, subprocess
from pathlib import Path


def slowest_cells(run_dir, top=5, at_least=2.0):
    "Per executed notebook of the run: its slowest code cells as (seconds, first line), from papermill's metadata."
    profile = {}
    for path in sorted((Path(run_dir) / 'notebooks').glob('*.ipynb')):
        cells = json.loads(path.read_text())['cells']
        timed = [(round(c['metadata'].get('papermill', {}).get('duration') or 0.0, 1),
                  ' / '.join([l.strip() for l in ''.join(c['source']).splitlines() if l.strip() and not l.lstrip().startswith('#')][:2])[:120])
                 for c in cells if c['cell_type'] == 'code']
        profile[path.stem] = [t for t in sorted(timed, key=lambda t: -t[0])[:top] if t[0] >= at_least]
    return profile


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cold', required=True, help='run folder of the first studio run after a clean install')
    parser.add_argument('--warm', required=True, help='run folder of the studio run after it, caches kept')
    parser.add_argument('--install-minutes', type=float, help='minutes `make install` took in that clone')
    parser.add_argument('--test-minutes', type=float, help="minutes the README's test command took from a fresh clone")
    parser.add_argument('--note', default='', help='what else ran on the machine meanwhile, if anything')
    args = parser.parse_args()

    from crossmodal.run.budget import budget_table, run_timing
    root = Path(__file__).resolve().parents[1]
    commit = subprocess.run(['git', '-C', str(root), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    record = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'), commit=commit,
                  cold=run_timing(Path(args.cold)), warm=run_timing(Path(args.warm)), note=args.note)
    record['slowest_cells'] = dict(cold=slowest_cells(args.cold), warm=slowest_cells(args.warm))
    if args.install_minutes is not None: record['install'] = dict(minutes=args.install_minutes)
    if args.test_minutes is not None: record['test_command'] = dict(minutes=args.test_minutes)
    out = root / 'bench' / 'results' / 'studio_budget.json'
    out.write_text(json.dumps(record, indent=1) + '\n')
    print(budget_table(record).round(1).to_string(index=False))
    slow = sorted(record['cold']['notebooks'].items(), key=lambda kv: -kv[1])[:5]
    print('slowest notebooks, cold:', ', '.join(f'{nb} {s:.0f} s' for nb, s in slow))
    print(f'written: {out}')


if __name__ == '__main__':
    main()
