"""Benchmark (not a test): PictoNet pretraining and embedding speed on this machine.

* corpus: rendering the non-instrument pictograms (read from the corpus' `corpus.json` when it is cached);
* pretraining for the profile (target for `studio`: under 15 minutes on 2 CPU cores): wall time and augmented
  images per second. With `--retrain` the weights are trained again here and timed; without it the numbers are the
  ones `pretrain_pictonet` measured and stored in the weights' sidecar `pictonet.json` when it built them
  (the weights are trained first if absent);
* embedding the profile's instrument images (`render_images`) with the frozen encoder, files read from disk, no
  embedding cache (target for `studio`: under a minute).

    python bench/bench_pictonet.py [--profile studio] [--seed 0] [--retrain] [--threads N]

Writes bench/results/pictonet.json and prints it.
"""
import argparse, datetime, json, os, platform, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='studio')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--retrain', action='store_true', help='train the weights again here and time it')
    parser.add_argument('--threads', type=int, default=None, help='PyTorch threads (default: crossmodal.core.default_threads())')
    args = parser.parse_args()

    import torch
    from crossmodal.core import get_profile
    from crossmodal.data.studio.images import render_images
    from crossmodal.embedders.cache import embed_manifest
    from crossmodal.embedders.pictograms import render_corpus
    from crossmodal.core import default_threads
    from crossmodal.embedders.pictonet import PictoNetEmbedder, load_pictonet, pretrain_options, pretrain_pictonet, weights_dir

    P = get_profile(args.profile)
    options = pretrain_options(P, args.seed)
    load_at_start = os.getloadavg()[0]
    start = time.perf_counter()
    corpus = render_corpus(options['image_size'], options['max_classes'])
    corpus_read = time.perf_counter() - start

    had_weights = (weights_dir(P, args.seed) / 'pictonet.json').exists()
    start = time.perf_counter()
    pretrain_pictonet(P.name, **options, force=args.retrain, threads=args.threads)
    call_seconds = time.perf_counter() - start
    _, meta = load_pictonet(P, args.seed, train_if_missing=False)
    source = 'trained in this run' if (args.retrain or not had_weights) else 'measured when the weights were built (sidecar)'

    manifest = render_images(P, args.seed, verbose=False)
    embedder = PictoNetEmbedder(P, args.seed, train_if_missing=False, threads=args.threads)
    start = time.perf_counter()
    emb, stats = embed_manifest(embedder, manifest, batch_size=256, cache=False, progress=False, return_stats=True)
    embed_seconds = time.perf_counter() - start

    report = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(), load_average_at_start=round(load_at_start, 2),
                     default_threads_now=default_threads(), torch=torch.__version__),
        profile=P.name, seed=args.seed,
        corpus=dict(n_drawings=len(corpus.drawings), n_classes=corpus.n_classes, side_px=P.pretrain_image_size,
                    render_seconds=corpus.info['seconds'], cached_read_seconds=round(corpus_read, 2),
                    skipped=len(corpus.info['skipped'])),
        pretraining=dict(source=source, seconds=meta['seconds'], minutes=round(meta['seconds'] / 60, 2),
                         images=meta['images'], images_per_second=meta['images_per_second'], threads=meta['threads'],
                         epochs=meta['config']['epochs'], bf16=meta['config']['bf16'],
                         under_15_minutes=meta['seconds'] < 15 * 60, sha256=meta['sha256'], call_seconds=round(call_seconds, 2),
                         epoch_seconds_min_max=[round(min(meta['history']['seconds']), 2), round(max(meta['history']['seconds']), 2)]),
        embedding=dict(n_images=len(manifest), image_size_in=P.image_size, image_size_net=P.pretrain_image_size,
                       seconds=round(embed_seconds, 2), images_per_second=round(len(manifest) / embed_seconds, 1),
                       load_seconds=round(stats['load_seconds'], 2), network_seconds=round(stats['embed_seconds'], 2),
                       under_a_minute=embed_seconds < 60, dim=int(emb.shape[1])),
    )
    out = Path(__file__).parent / 'results' / 'pictonet.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + '\n')
    print(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
