"""Benchmark (not a test): how close the PyTorch musicnn port runs to what the machine's arithmetic allows.

All in one run, on the same machine, so that only ratios are read (the machine is shared and noisy):
* the machine's float32 matrix-multiply rate (2048 x 2048 x 2048, PyTorch, all its threads), measured between
  every forward measurement so that a change of load shows;
* each architecture's arithmetic per 3-s patch, counted by `torch.utils.flop_counter.FlopCounterMode` (a
  multiply-add is two operations);
* the bare forward pass, patches per second, as the package ran it before (32 patches per pass, every tensor in
  the default layout, PyTorch's default of one thread per core) and as it runs now (`FORWARD_BATCH` patches per
  pass, the VGG weights channels-last, `crossmodal.core.compute_threads`: one thread when the load average says
  the cores are busy), in alternating rounds, with the medians reported; their arithmetic rate as a share of the
  matrix-multiply rate;
* the log-mel alone (clips per second);
* the whole pipeline through `embed_manifest` (read WAV, resample 22,050 -> 16,000 Hz, log-mel, forward, write
  the cache) on synthetic 3-s clips at 22,050 Hz like the studio's (harmonic tones with decays and noise), into
  an empty temporary cache, after a warm-up that loads librosa, numba's compiled functions and the weights:
  clips per second now and before, and the ratio to the bare forward measured just before and after it.

    python bench/bench_musicnn_speed.py [--clips 120] [--seconds 3]

Writes bench/results/musicnn_speed.json and prints it. The comparison with the original TensorFlow extractor is
bench/bench_musicnn.py.
"""
import argparse, contextlib, copy, datetime, json, os, platform, statistics, sys, tempfile, time
from pathlib import Path

import numpy as np

os.environ.setdefault('HF_HUB_OFFLINE', '1')


def matmul_gflops(n=2048, seconds=1.0):
    "float32 matrix-multiply rate, GFLOP/s."
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n); a @ b
    start, reps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds: a @ b; reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def patches_per_second(net, batch, seconds):
    "Bare forward passes of `batch` random patches for about `seconds`, on the package's compute threads: patches per second."
    import torch
    from crossmodal.core import compute_threads
    x = torch.randn(batch, 187, 96)
    with compute_threads(), torch.inference_mode():
        net(x); start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds: net(x); n += batch
    return n / (time.perf_counter() - start)


def flops_per_patch(net):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter, torch.inference_mode(): net(torch.randn(1, 187, 96))
    return counter.get_total_flops()


@contextlib.contextmanager
def as_before(model):
    "For the block, `model`'s cached network in the default (contiguous) layout on PyTorch's own thread count (one per core), as it ran before."
    import torch
    from crossmodal.core import THREADS_VARIABLE
    from crossmodal.embedders.musicnn import load_musicnn
    net, old = load_musicnn(model), os.environ.get(THREADS_VARIABLE)
    net.to(memory_format=torch.contiguous_format); os.environ[THREADS_VARIABLE] = str(torch.get_num_threads())
    try: yield
    finally:
        if 'vgg' in model: net.to(memory_format=torch.channels_last)
        if old is None: os.environ.pop(THREADS_VARIABLE, None)
        else: os.environ[THREADS_VARIABLE] = old


def synthetic_clips(folder, n, seconds, sr=22050, seed=0):
    "A manifest of `n` synthetic WAV clips (harmonic tones with decays and a little noise), like the studio's."
    import pandas as pd, soundfile as sf
    rng, t, rows = np.random.default_rng(seed), np.arange(int(seconds * sr)) / sr, []
    for i in range(n):
        f0 = 55 * 2 ** (rng.integers(0, 48) / 12)
        tone = sum(np.sin(2 * np.pi * f0 * k * t) * rng.uniform(0.2, 1) / k for k in range(1, 9))
        y = 0.3 * tone * np.exp(-t * rng.uniform(0.3, 3)) + rng.normal(0, 0.005, len(t))
        sf.write(folder / f'clip{i:04d}.wav', y.astype(np.float32), sr, subtype='PCM_16')
        rows.append(dict(id=f'clip{i:04d}', path=f'clip{i:04d}.wav', modality='audio'))
    manifest = pd.DataFrame(rows); manifest.attrs['root'] = str(folder)
    return manifest


def pipeline_clips_per_second(model, manifest, cache, **options):
    from crossmodal.embedders.base import get_embedder
    from crossmodal.embedders.cache import embed_manifest
    start = time.perf_counter()
    embed_manifest(get_embedder(model, **options), manifest, cache=cache, progress=False)
    return len(manifest) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clips', type=int, default=120)
    parser.add_argument('--seconds', type=float, default=3.0, help='length of each synthetic clip')
    parser.add_argument('--round-seconds', type=float, default=3.0, help='length of one forward measurement')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()

    import torch
    from crossmodal.core import repo_root
    from crossmodal.core import default_threads
    from crossmodal.embedders.musicnn import FORWARD_BATCH, load_musicnn, log_mel, to_musicnn_audio
    result = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                  machine=dict(platform=platform.platform(), cpus=os.cpu_count(), torch_threads=torch.get_num_threads(),
                               load_average_at_start=os.getloadavg()[0]),
                  forward_batch=FORWARD_BATCH, threads_now_at_start=default_threads(), models={})
    matmul = [matmul_gflops()]
    for model in ('MTT_musicnn', 'MTT_vgg'):
        net = load_musicnn(model)
        flops = flops_per_patch(net)
        before, now = [], []
        for _ in range(args.rounds):
            with as_before(model): before.append(patches_per_second(net, 32, args.round_seconds))
            now.append(patches_per_second(net, FORWARD_BATCH, args.round_seconds))
            matmul.append(matmul_gflops())
        b, a = statistics.median(before), statistics.median(now)
        result['models'][model] = dict(gflop_per_patch=round(flops / 1e9, 3),
                                       forward_before=dict(batch=32, layout='contiguous', patches_per_second=round(b, 1),
                                                           gflop_per_second=round(b * flops / 1e9, 1)),
                                       forward_now=dict(batch=FORWARD_BATCH, layout='channels_last' if 'vgg' in model else 'contiguous',
                                                        patches_per_second=round(a, 1), gflop_per_second=round(a * flops / 1e9, 1)),
                                       forward_speedup=round(a / b, 2))
        print(model, result['models'][model], flush=True)
    rate = statistics.median(matmul)
    result['matmul_float32_gflop_per_second'] = dict(median=round(rate, 1), all=[round(m, 1) for m in matmul])
    for entry in result['models'].values():
        for key in ('forward_before', 'forward_now'):
            entry[key]['share_of_matmul_rate'] = round(entry[key]['gflop_per_second'] / rate, 3)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); (tmp / 'clips').mkdir()
        manifest = synthetic_clips(tmp / 'clips', args.clips, args.seconds)
        audio = [to_musicnn_audio(*read(tmp / 'clips' / p)) for p in manifest.path[:20]]
        log_mel(audio[0])  # warm-up: librosa's import and numba's compiled functions
        start = time.perf_counter()
        for clip in audio: log_mel(clip)
        result['log_mel_clips_per_second'] = round(len(audio) / (time.perf_counter() - start), 1)
        warm = manifest.iloc[:4].copy(); warm.attrs = manifest.attrs
        for model in ('MTT_musicnn', 'MTT_vgg'):
            pipeline_clips_per_second(model, warm, tmp / f'warm-{model}')
            with as_before(model): old = pipeline_clips_per_second(model, manifest, tmp / f'before-{model}', batch_size=32)
            # the bare forward measured just before and just after the pipeline, so that both see the same load
            net = load_musicnn(model)
            beside = [patches_per_second(net, FORWARD_BATCH, args.round_seconds)]
            new = pipeline_clips_per_second(model, manifest, tmp / f'now-{model}')
            beside.append(patches_per_second(net, FORWARD_BATCH, args.round_seconds))
            patches_per_clip = max(1, int(args.seconds // 3))
            forward = statistics.mean(beside) / patches_per_clip
            result['models'][model]['pipeline'] = dict(clips=len(manifest), clip_seconds=args.seconds, source_rate=22050,
                                                       clips_per_second_before=round(old, 1), clips_per_second_now=round(new, 1),
                                                       speedup=round(new / old, 2),
                                                       bare_forward_beside=round(forward, 1),
                                                       bare_forward_over_pipeline=round(forward / new, 2))
            print(model, result['models'][model]['pipeline'], flush=True)

    result['machine']['load_average_at_end'] = os.getloadavg()[0]
    result['threads_now_at_end'] = default_threads()
    path = repo_root() / 'bench' / 'results' / 'musicnn_speed.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + '\n')
    print(json.dumps(result, indent=1))


def read(path):
    "(samples, rate) of a WAV file."
    import soundfile as sf
    return sf.read(path, dtype='float32')


if __name__ == '__main__':
    main()
