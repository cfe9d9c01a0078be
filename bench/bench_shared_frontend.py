"""Benchmark (not a test): the studio audio embedders one after another, or together with one read and one log-mel per clip.

A cold run embeds every studio clip with every audio embedder. `embed_manifest` run once per embedder reads and
hashes each file once per embedder, each of the four musicnn models computes the same 16 kHz log-mel, and
classical_audio computes again the statistics of mfcc, spectral_contrast and chroma; `embed_manifest_many` reads and
hashes each file once per batch for all of them, and the musicnn models share each clip's mel
(`crossmodal.embedders.musicnn.shared_log_mel`), the classical descriptors each clip's statistics
(`crossmodal.embedders.classical.shared_statistics`). Both ways run here in one process, on the same synthetic
3-s clips at 22,050 Hz as bench_musicnn_speed.py's (the studio's format), into fresh empty caches (as a cold run),
in alternating rounds after a warm-up; the medians, their ratio, and the largest difference between the two ways'
vectors (the shared mel is the same array, so it is expected to be 0) are reported.

    python bench/bench_shared_frontend.py [--clips 160] [--rounds 2] [--embedders musicnn|audio]

Writes bench/results/shared_frontend.json (shared_frontend_audio.json with --embedders audio) and prints it.
"""
import argparse, datetime, json, os, platform, statistics, sys, tempfile, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).parent))
from bench_musicnn_speed import synthetic_clips


def one_after_another(names, manifest, cache):
    "Each embedder over the whole manifest in turn, the shared front ends cleared before each: (vectors, seconds)."
    from crossmodal.core import clear_recent_results
    from crossmodal.embedders.cache import embed_manifest
    start, out = time.perf_counter(), {}
    for name in names:
        clear_recent_results()
        out[name] = embed_manifest(name, manifest, cache=cache, progress=False)
    return out, time.perf_counter() - start


def together(names, manifest, cache):
    "All embedders batch by batch: (vectors, seconds)."
    from crossmodal.core import clear_recent_results
    from crossmodal.embedders.cache import embed_manifest_many
    clear_recent_results()
    start = time.perf_counter()
    out, _ = embed_manifest_many(names, manifest, cache=cache, progress=False)
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clips', type=int, default=160)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--embedders', choices=('musicnn', 'audio'), default='musicnn',
                        help="the four musicnn models, or every available audio embedder")
    args = parser.parse_args()
    from crossmodal.core import repo_root, default_threads
    from crossmodal.embedders.base import available_embedders
    from crossmodal.embedders.musicnn import MUSICNN_MODELS, shared_log_mel
    names = list(MUSICNN_MODELS) if args.embedders == 'musicnn' else \
        available_embedders('audio').query('available').name.tolist()
    result = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                  machine=dict(platform=platform.platform(), cpus=os.cpu_count(), threads=default_threads(),
                               load_average_at_start=os.getloadavg()[0]),
                  embedders=names, clips=args.clips, clip_seconds=3.0, source_rate=22050, rounds=args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / 'clips').mkdir()
        manifest = synthetic_clips(tmp / 'clips', args.clips, 3.0)
        warm = manifest.iloc[:4].copy(); warm.attrs = manifest.attrs
        together(names, warm, tmp / 'warm')   # imports, numba's compiled functions, the weights
        seconds = dict(one_after_another=[], together=[])
        for r in range(args.rounds):
            alone, t_alone = one_after_another(names, manifest, tmp / f'alone-{r}')
            hits = shared_log_mel.hits
            shared, t_shared = together(names, manifest, tmp / f'together-{r}')
            result['mel_reuses_per_clip'] = round((shared_log_mel.hits - hits) / args.clips, 2)
            seconds['one_after_another'].append(t_alone); seconds['together'].append(t_shared)
            result['largest_difference'] = max(float(abs(alone[n] - shared[n]).max()) for n in names)
            print(f"round {r}: one after another {t_alone:.1f} s, together {t_shared:.1f} s", flush=True)
    medians = {k: statistics.median(v) for k, v in seconds.items()}
    result.update(seconds={k: [round(s, 2) for s in v] for k, v in seconds.items()},
                  clips_per_second={k: round(args.clips / s, 2) for k, s in medians.items()},
                  speedup=round(medians['one_after_another'] / medians['together'], 2))
    result['machine']['load_average_at_end'] = os.getloadavg()[0]
    path = repo_root() / 'bench' / 'results' / f'shared_frontend{"" if args.embedders == "musicnn" else "_audio"}.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + '\n')
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
