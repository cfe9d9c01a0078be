"""Embedding extraction on a local Ray instance started here (no network): the same vectors, bit for bit, in the same
cache entries as the in-process path; a worker killed mid-way is retried and leaves no entry that looks complete."""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

ray = pytest.importorskip('ray', reason="Ray is the cluster extra: pip install -e '.[cluster]'")
from ray import cloudpickle   # Ray pickles with its own copy of cloudpickle

from crossmodal.cluster import start_ray
from crossmodal.core import compute_threads
from crossmodal.embedders.base import Embedder
from crossmodal.embedders.cache import EmbeddingEntries, embed_manifest, embedding_cache_dir
from crossmodal.embedders.on_ray import embed_manifest_on_ray

cloudpickle.register_pickle_by_value(__import__(__name__))   # the test embedders below travel to the workers by value


@pytest.fixture(scope='module')
def local_ray():
    start_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp('clips')
    rng = np.random.default_rng(0)
    for i in range(6): soundfile.write(folder / f'c{i}.wav', rng.uniform(-.5, .5, 16000 * 3 + 100 * i).astype(np.float32), 16000)
    soundfile.write(folder / 'c6.wav', soundfile.read(folder / 'c0.wav')[0], 16000)   # the same bytes as c0: one key
    ids = [f'c{i}' for i in range(7)]
    return folder, pd.DataFrame(dict(id=ids, path=[f'{i}.wav' for i in ids], modality='audio'))


def entry_names(folder: Path) -> set:
    return {p.relative_to(folder).as_posix() for p in (folder / 'items').rglob('*.npy')}


@pytest.mark.parametrize('name', ['mfcc', 'MTT_musicnn'])
def test_ray_equals_the_local_path_bit_for_bit_in_the_same_cache_entries(local_ray, clips, tmp_path, name):
    folder, manifest = clips
    on_ray, stats = embed_manifest_on_ray(name, manifest, folder, cache=tmp_path / 'ray', batch_size=2, actors=2,
                                          threads=1, progress=False, return_stats=True)
    with compute_threads(1): local = embed_manifest(name, manifest, folder, cache=tmp_path / 'local', batch_size=2, progress=False)
    assert on_ray.dtype == np.float32 and np.array_equal(on_ray, local)
    assert (stats['computed'], stats['failed']) == (6, {})       # seven rows, six distinct clips
    ray_dir = next((tmp_path / 'ray').iterdir()); local_dir = next((tmp_path / 'local').iterdir())
    assert ray_dir.name == local_dir.name                         # one folder key for both paths
    assert entry_names(ray_dir) == entry_names(local_dir)         # same item keys, same vector checksums
    assert len(entry_names(ray_dir)) == 6
    again, stats = embed_manifest(name, manifest, folder, cache=tmp_path / 'ray', progress=False, return_stats=True)
    assert np.array_equal(again, local) and stats['computed'] == 0   # a laptop run reads what the cluster wrote


class DiesOnce(Embedder):
    "Embeds like `[len, mean, std]`, but its worker process dies the first time it sees `c3` (a marker file remembers)."
    name, modality, dim, sample_rate = 'dies-once', 'audio', 3, 16000
    def __init__(self, marker): self.marker = str(marker)
    def cache_params(self): return dict(name=self.name, sample_rate=self.sample_rate)
    def _embed(self, batch):
        out = np.array([[len(x), x.mean(), x.std()] for x in batch], np.float32)
        if len(batch[0]) == 16000 * 3 + 300 and not os.path.exists(self.marker):
            Path(self.marker).write_text('died'); os._exit(1)          # killed mid-batch, before its vectors are stored
        return out


def test_a_killed_worker_is_retried_and_leaves_no_complete_looking_entry(local_ray, clips, tmp_path):
    folder, manifest = clips
    marker = tmp_path / 'died'
    vecs, stats = embed_manifest_on_ray(DiesOnce(marker), manifest, folder, cache=tmp_path / 'cache', batch_size=1,
                                        actors=2, progress=False, return_stats=True)
    assert marker.exists()                                      # the worker did die
    expected = DiesOnce(tmp_path / 'never').embed([soundfile.read(folder / f'{i}.wav') for i in manifest.id])
    assert np.array_equal(vecs, expected) and stats['failed'] == {}
    cache_dir = embedding_cache_dir(DiesOnce(marker), tmp_path / 'cache')
    assert len(entry_names(cache_dir)) == 6                     # one entry per distinct clip, no leftovers
    assert not [p for p in (cache_dir / 'items').rglob('*') if p.is_file() and p.suffix != '.npy']
    entries = EmbeddingEntries(cache_dir)
    for p in (cache_dir / 'items').rglob('*.npy'): assert isinstance(entries.read(p.name.split('.')[0], 3), np.ndarray)


def test_an_unreadable_item_is_retried_then_skipped_and_named(local_ray, clips, tmp_path, capsys):
    folder, manifest = clips
    (tmp_path / 'bad.wav').write_bytes(b'not audio')
    bad = pd.concat([manifest.assign(path=[str(folder / p) for p in manifest.path]),
                     pd.DataFrame(dict(id=['bad'], path=[str(tmp_path / 'bad.wav')], modality='audio'))], ignore_index=True)
    vecs, stats = embed_manifest_on_ray('mfcc', bad, cache=tmp_path / 'cache', batch_size=4, progress=False, return_stats=True)
    assert list(stats['failed']) == ['bad'] and np.isnan(vecs[-1]).all() and np.isfinite(vecs[:-1]).all()
    assert "1 item(s) skipped after a retry" in capsys.readouterr().out
