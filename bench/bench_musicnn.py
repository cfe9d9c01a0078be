"""Benchmark (not a test): crossmodal's PyTorch musicnn vs the original `musicnn` package's `extractor()`.

On the first 200 clips of the studio audio (`render_studio_audio('studio', 0)`; `--source synthetic`: 200 synthetic
3-s tones at 22,050 Hz, for a machine without the studio render), same machine, same run:
* this package, in its default mode (`mel_dtype='float16'`, the original's rounding): read each WAV, resample
  to 16 kHz (soxr_hq, as `librosa.load`), log-mel, then all patches through the PyTorch network in batches —
  timed end to end, the weights' loading included;
* the original: `musicnn.extractor.extractor(path, model)` per clip (it rebuilds the graph and restores the
  checkpoint on every call), run in a TensorFlow virtual environment through a subprocess, timed over the loop
  (TensorFlow's import is reported apart). Its `batch_data` is its own source with ONE line changed, as in
  tests/fixtures/musicnn/make_reference.py: `np.log10(10000 * audio_rep + 1)` becomes
  `np.log10(10000 * audio_rep.astype(np.float32) + 1)`. The float16 rounding of the mel power before it is
  kept; the change is NumPy 1's arithmetic (there `10000 * <float16 array>` was promoted to float32), and avoids
  NumPy 2's float16 overflow to inf (mel power > 6.55). Same cost.
Outputs are compared (the studio clips are 3 s: one patch each, so the original's multi-patch slip does not
apply): the largest absolute difference per output, and the largest relative to each clip's largest activation;
"within 1e-4" is abs < 1e-4 for taggram/penultimate/mean_pool and < 1e-4 of the clip max for max_pool (TF's own
float32 summation error grows with the activation: see nbs/03a_musicnn.ipynb). For contrast, the port's
`mel_dtype='float32'` mode (no rounding) is compared too, untimed. Then the peak memory (ru_maxrss) of embedding
the whole studio set with the port, in a fresh process.

    python bench/bench_musicnn.py [--n-clips 200] [--model MTT_musicnn] [--tf-python /tmp/tfvenv/bin/python]

The TensorFlow environment (outside the repository):
    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install "tensorflow-cpu==2.21.*" librosa numpy soundfile
    /tmp/tfvenv/bin/pip install --no-deps "tf-keras==2.21.*" musicnn
Writes bench/results/musicnn.json and prints it.
"""
import argparse, datetime, json, os, platform, resource, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

import numpy as np

os.environ.setdefault('HF_HUB_OFFLINE', '1')
OUTPUTS = ('taggram', 'penultimate', 'mean_pool', 'max_pool')

ORIGINAL_SCRIPT = textwrap.dedent('''
    import os, sys, time, contextlib, io, json
    os.environ['TF_USE_LEGACY_KERAS'] = '1'; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    t0 = time.perf_counter()
    import numpy as np, librosa
    from musicnn import extractor as mx
    from musicnn import configuration as config
    import_seconds = time.perf_counter() - t0

    import inspect
    # the original's batch_data, its own source, with only the log line in float32 (NumPy 1's arithmetic; the
    # float16 rounding of the mel power on the line before is kept)
    source = inspect.getsource(mx.batch_data)
    old, new = 'np.log10(10000 * audio_rep + 1)', 'np.log10(10000 * audio_rep.astype(np.float32) + 1)'
    assert source.count(old) == 1 and source.count('audio_rep = audio_rep.astype(np.float16)') == 1, 'musicnn changed'
    namespace = {}
    exec(compile(source.replace(old, new), mx.__file__, 'exec'), vars(mx), namespace)
    mx.batch_data = namespace['batch_data']

    paths, model, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    rows = {}
    start = time.perf_counter()
    for path in paths:
        with contextlib.redirect_stdout(io.StringIO()):
            taggram, tags, features = mx.extractor(path, model=model, input_length=3, extract_features=True)
        first = dict(taggram=taggram[0])
        if 'vgg' in model: first['penultimate'] = features['pool5'].reshape(-1)
        else: first.update({k: features[k][0] for k in ('penultimate', 'mean_pool', 'max_pool')})
        for k, v in first.items(): rows.setdefault(k, []).append(np.asarray(v, np.float32))
    seconds = time.perf_counter() - start
    np.savez(out, seconds=seconds, import_seconds=import_seconds, **{k: np.stack(v) for k, v in rows.items()})
''')

MEMORY_SCRIPT = textwrap.dedent('''
    import json, resource, sys, time
    import numpy as np
    from crossmodal.data.studio.audio import render_studio_audio
    from crossmodal.data.manifest import load_audio
    from crossmodal.embedders.base import get_embedder
    from pathlib import Path
    manifest = render_studio_audio('studio', 0, verbose=False)
    root = Path(manifest.attrs['root'])
    embedder = get_embedder(sys.argv[1])
    start, chunks = time.perf_counter(), []
    for i in range(0, len(manifest), 64):
        batch = [load_audio(root / p) for p in manifest.path.iloc[i:i + 64]]
        chunks.append(embedder.embed(batch))
    emb = np.concatenate(chunks)
    print(json.dumps(dict(n_clips=len(emb), dim=emb.shape[1], seconds=time.perf_counter() - start,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
''')


def port_extract(paths, model, mel_dtype='float16'):
    "The port, end to end on files: read, resample, log-mel, batched network. Returns first-patch outputs and seconds."
    import soundfile as sf
    from crossmodal.embedders import musicnn as mn
    start = time.perf_counter()
    mn.load_musicnn.cache_clear()
    patches = []
    for path in paths:
        audio, sr = sf.read(path, dtype='float32', always_2d=True)
        patches.append(mn.mel_patches(mn.log_mel(mn.to_musicnn_audio(audio.T, sr), mel_dtype)))
    counts = [len(p) for p in patches]
    out = mn.run_patches(np.concatenate(patches), model)
    seconds = time.perf_counter() - start
    firsts = np.cumsum([0] + counts[:-1])
    return {k: v[firsts] for k, v in out.items() if k in OUTPUTS}, seconds


def compare(ours, original):
    "Largest differences per output, absolute and relative to each clip's largest activation, and the 1e-4 verdict."
    diffs = {k: float(np.abs(ours[k] - original[k]).max()) for k in original}
    # relative to each clip's largest activation of that output: float32 summation error scales with it
    scaled = {k: float((np.abs(ours[k] - original[k]).max(1) / np.abs(original[k]).max(1)).max()) for k in original}
    within = {k: bool(scaled[k] < 1e-4 if k == 'max_pool' else diffs[k] < 1e-4) for k in original}
    return {'max_abs_diff': diffs, 'max_diff_relative_to_clip_max': scaled,
            'within_1e-4 (abs; max_pool: of the clip max)': within, 'all_within_1e-4': all(within.values())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--n-clips', type=int, default=200)
    parser.add_argument('--model', default='MTT_musicnn')
    parser.add_argument('--tf-python', default=os.environ.get('MUSICNN_TF_PYTHON', '/tmp/tfvenv/bin/python'))
    parser.add_argument('--skip-memory', action='store_true', help='skip embedding the whole studio set')
    parser.add_argument('--source', choices=('studio', 'synthetic'), default='studio',
                        help="the studio render's clips, or synthetic 3-s tones at 22,050 Hz written to a temporary folder "
                             "(bench_musicnn_speed.py's; for a machine without the studio render; implies --skip-memory)")
    args = parser.parse_args()

    import torch
    from crossmodal.core import repo_root
    from crossmodal.data.studio.audio import render_studio_audio
    if args.source == 'studio': manifest = render_studio_audio('studio', 0, verbose=False)
    else:
        import importlib.util
        spec = importlib.util.spec_from_file_location('bench_musicnn_speed', Path(__file__).with_name('bench_musicnn_speed.py'))
        speed = importlib.util.module_from_spec(spec); spec.loader.exec_module(speed)
        folder = Path(tempfile.mkdtemp(prefix='crossmodal-bench-'))
        manifest = speed.synthetic_clips(folder, args.n_clips, 3.0)
        manifest['duration'], manifest['sample_rate'], args.skip_memory = 3.0, 22050, True
    paths = [str(Path(manifest.attrs['root']) / p) for p in manifest.path.iloc[:args.n_clips]]
    result = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
                  machine=dict(platform=platform.platform(), cpus=os.cpu_count(), torch_threads=torch.get_num_threads(),
                               load_average_at_start=os.getloadavg()[0]),
                  model=args.model, source=args.source, clips=len(paths), clip_seconds=float(manifest.duration.iloc[0]),
                  clip_sample_rate=int(manifest.sample_rate.iloc[0]))

    ours, port_seconds = port_extract(paths, args.model, 'float16')
    result['port'] = dict(mel_dtype='float16', seconds=round(port_seconds, 2),
                          clips_per_second=round(len(paths) / port_seconds, 2))
    print(f"port: {len(paths)} clips in {port_seconds:.1f} s", flush=True)

    if Path(args.tf_python).exists():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / 'original.npz'
            env = dict(os.environ, TF_USE_LEGACY_KERAS='1')
            proc = subprocess.run([args.tf_python, '-c', ORIGINAL_SCRIPT, json.dumps(paths), args.model, str(out)],
                                  env=env, capture_output=True, text=True)
            if proc.returncode: sys.exit(f"the original extractor failed:\n{proc.stderr[-3000:]}")
            original = dict(np.load(out))
        seconds = float(original.pop('seconds')); import_seconds = float(original.pop('import_seconds'))
        result['original'] = dict(batch_data='unmodified, except np.log10(10000 * audio_rep.astype(np.float32) + 1) '
                                  '(NumPy 1 arithmetic; the float16 rounding of the mel power kept)',
                                  seconds=round(seconds, 2), clips_per_second=round(len(paths) / seconds, 2),
                                  tensorflow_import_seconds=round(import_seconds, 2))
        result['speedup'] = round(seconds / port_seconds, 2)
        result['equal_outputs'] = compare(ours, original)
        float32_mode, _ = port_extract(paths, args.model, 'float32')
        result['equal_outputs_mel_float32'] = compare(float32_mode, original)
        print(f"original: {len(paths)} clips in {seconds:.1f} s; speed-up {result['speedup']}x; all within 1e-4: "
              f"{result['equal_outputs']['all_within_1e-4']} (mel_dtype='float32': "
              f"{result['equal_outputs_mel_float32']['all_within_1e-4']})", flush=True)
    else:
        result['original'] = f"not run: no TensorFlow environment at {args.tf_python} (see this script's docstring)"

    if not args.skip_memory:
        proc = subprocess.run([sys.executable, '-c', MEMORY_SCRIPT, args.model], capture_output=True, text=True)
        if proc.returncode: sys.exit(f"the whole-set extraction failed:\n{proc.stderr[-3000:]}")
        full = json.loads(proc.stdout.strip().splitlines()[-1])
        result['whole_studio_set'] = dict(clips=full['n_clips'], dim=full['dim'], seconds=round(full['seconds'], 1),
                                          clips_per_second=round(full['n_clips'] / full['seconds'], 2),
                                          peak_rss_mb=round(full['peak_rss_mb'], 1), goal_mb=4096)

    result['machine']['load_average_at_end'] = os.getloadavg()[0]
    if args.source == 'synthetic':
        import shutil; shutil.rmtree(folder, ignore_errors=True)
    path = repo_root() / 'bench' / 'results' / 'musicnn.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + '\n')
    print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
