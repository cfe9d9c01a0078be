"""The HEAR 2021 API both ways (`crossmodal.embedders.hear`, `crossmodal.hear`): every exported audio module keeps the
contract (the package's own checks always; the official `hearvalidator` where TensorFlow is installed), and a HEAR
module of one's own runs through `get_embedder('hear:...')`, the embedding cache and the retrieval metric."""
import importlib, importlib.util, shutil, sys, textwrap, types, warnings

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from crossmodal.embedders.base import get_embedder, why_unavailable, embedder_kind
from crossmodal.embedders.cache import embed_manifest
from crossmodal.embedders.hear import HEAR_EMBEDDERS, hear_module_name, validate_hear_module
from crossmodal.evaluate.retrieval import random_ndcg, retrieval_ndcg


def _options(name):
    "`model_file_path` for `name`'s module: random weights for a paper model, none for the others."
    return 'random' if embedder_kind(name) == 'paper' else ''


def _skip_unless_available(name):
    why = why_unavailable(name, **({'weights': 'random'} if embedder_kind(name) == 'paper' else {}))
    if why: pytest.skip(f'{name} cannot run here: {why}')


# The README's test command keeps to its time budget: OpenL3 embeds 1-s windows every 0.1 s inside each timestamp's
# window (11 forwards per timestamp) and CLAP with random weights builds HTSAT and RoBERTa (minutes on 2 cores), so
# those run under `make test-paper` (TensorFlow installed), where every module runs; their embedder tests run always.
HAS_TENSORFLOW = importlib.util.find_spec('tensorflow') is not None
CONTRACT_SECONDS = {'openl3_audio': 0.3, 'openl3_audio_512': 0.3}
SLOW = {n: 'OpenL3 and CLAP take minutes here: make test-paper runs them' for n in HEAR_EMBEDDERS if n.startswith(('openl3_', 'clap_'))}


@pytest.mark.parametrize('name', HEAR_EMBEDDERS)
def test_exported_module_keeps_the_contract(name):
    if name in SLOW and not HAS_TENSORFLOW: pytest.skip(SLOW[name])
    _skip_unless_available(name)
    seconds = CONTRACT_SECONDS.get(name, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)   # zero-padding of short noise to a model's patch is stated, and expected
        got = validate_hear_module(hear_module_name(name), _options(name), n_sounds=2, seconds=seconds)
    hop = round(50 * got['sample_rate'] / 1000)
    assert got['n_timestamps'] == len(range(0, int(seconds * got['sample_rate']), hop))
    assert got['repeat_diff'] == 0.0 and got['batch_diff'] <= 1e-4


@pytest.mark.parametrize('name', [n for n in HEAR_EMBEDDERS if embedder_kind(n) != 'paper'])
def test_scene_embedding_is_the_registry_vector(name):
    module = importlib.import_module(hear_module_name(name))
    model = module.load_model()
    clips = torch.rand((2, int(3.5 * model.sample_rate)), generator=torch.Generator().manual_seed(2)) * 2 - 1
    np.testing.assert_array_equal(module.get_scene_embeddings(clips, model).numpy(),
                                  get_embedder(name).embed([(c.numpy(), model.sample_rate) for c in clips]))


TONE_HEAR = textwrap.dedent('''
    """A deterministic HEAR module for the tests: per 64-ms frame, the energy in 16 log-spaced bands."""
    import numpy as np, torch
    __version__ = "1.0"
    FRAME, HOP = 1024, 512
    EDGES = np.geomspace(50, 8000, 17)
    class Model(torch.nn.Module):
        sample_rate, scene_embedding_size, timestamp_embedding_size = 16000, 16, 16
    def load_model(model_file_path=""):
        return Model()
    def get_timestamp_embeddings(audio, model):
        padded = torch.nn.functional.pad(audio, (FRAME // 2, FRAME - FRAME // 2))
        frames = padded.unfold(1, FRAME, HOP)[:, : (audio.shape[1] + HOP - 1) // HOP]
        power = torch.fft.rfft(frames * torch.hann_window(FRAME)).abs() ** 2
        freqs = torch.fft.rfftfreq(FRAME, 1 / model.sample_rate)
        bands = torch.stack([power[..., (freqs >= a) & (freqs < b)].sum(-1) for a, b in zip(EDGES[:-1], EDGES[1:])], -1)
        stamps = torch.arange(frames.shape[1]) * (HOP * 1000.0 / model.sample_rate)
        return torch.log1p(bands).float(), stamps.expand(audio.shape[0], -1)
    def get_scene_embeddings(audio, model):
        return get_timestamp_embeddings(audio, model)[0].mean(1)
''')


@pytest.fixture
def tone_module(tmp_path, monkeypatch):
    folder = tmp_path / 'modules'; folder.mkdir()
    (folder / 'tone_hear.py').write_text(TONE_HEAR)
    monkeypatch.syspath_prepend(str(folder))
    sys.modules.pop('tone_hear', None)
    yield 'tone_hear'
    sys.modules.pop('tone_hear', None)


def _tone_manifest(folder):
    "Twelve clips: three pitches (the labels) x four loudnesses and phases, as wav files at 22.05 kHz."
    rows, rate = [], 22050
    t = np.arange(int(1.5 * rate)) / rate
    for label, f0 in [('low', 110.0), ('mid', 440.0), ('high', 1760.0)]:
        for k in range(4):
            tone = (0.1 + 0.2 * k) * np.sin(2 * np.pi * f0 * t + k) + 0.3 * np.sin(2 * np.pi * 2 * f0 * t)
            path = folder / f'{label}{k}.wav'
            sf.write(path, tone.astype(np.float32), rate)
            rows.append(dict(id=f'{label}{k}', path=path.name, modality='audio', label=label))
    return pd.DataFrame(rows)


def test_own_hear_module_through_registry_cache_and_retrieval(tone_module, tmp_path):
    import tone_hear
    manifest = _tone_manifest(tmp_path)
    embedder = get_embedder(f'hear:{tone_module}')
    vectors, stats = embed_manifest(embedder, manifest, tmp_path, batch_size=5, cache=tmp_path / 'cache', progress=False, return_stats=True)
    assert vectors.shape == (12, 16) and stats['computed'] == 12 and stats['resampled'] == 12   # 22.05 kHz files, a 16 kHz model
    again, stats = embed_manifest(embedder, manifest, tmp_path, cache=tmp_path / 'cache', progress=False, return_stats=True)
    assert stats['cached'] == 12 and np.array_equal(again, vectors)
    # the same vectors as the module gives for the resampled clips itself
    import librosa
    clips = [librosa.resample(sf.read(tmp_path / p, dtype='float32')[0], orig_sr=22050, target_sr=16000, res_type='soxr_hq') for p in manifest.path]
    direct = tone_hear.get_scene_embeddings(torch.from_numpy(np.stack(clips)), tone_hear.load_model()).numpy()
    np.testing.assert_allclose(vectors, direct, rtol=1e-5, atol=1e-5)
    # retrieval by pitch: the quieter two clips of each pitch ask, the louder two answer; an answer of the same pitch is relevant
    labels, loud = manifest.label.to_numpy(dtype=str), manifest.id.str[-1].astype(int).to_numpy() >= 2
    same = (labels[~loud][:, None] == labels[loud][None, :]).astype(np.int8)
    ndcg = retrieval_ndcg(vectors[~loud], vectors[loud], same, k=2)
    np.testing.assert_allclose(ndcg, retrieval_ndcg(direct[~loud], direct[loud], same, k=2), atol=1e-9)
    np.testing.assert_allclose(ndcg, 1.0)                 # band energies separate three octaves apart perfectly
    assert random_ndcg(same, k=2).max() < 0.4             # where chance is far lower: 1/3 of answers relevant


def test_own_module_version_keys_the_cache(tone_module, tmp_path):
    from crossmodal.embedders.cache import embedding_cache_dir
    first = embedding_cache_dir(get_embedder(f'hear:{tone_module}'))
    folder = tmp_path / 'modules'
    shutil.rmtree(folder / '__pycache__', ignore_errors=True)
    (folder / 'tone_hear.py').write_text(TONE_HEAR.replace('__version__ = "1.0"', '__version__ = "1.1"'))
    sys.modules.pop('tone_hear', None); importlib.invalidate_caches()
    second = get_embedder(f'hear:{tone_module}')
    assert second.params()['version'] == '1.1' and embedding_cache_dir(second) != first


def _official_validator(monkeypatch):
    """hearvalidator's `validate` module. It imports TensorFlow at module level, and on the PyTorch path only asks whether the model
    is a `tf.Module`: without TensorFlow installed, a stand-in module answering that question (no) lets the official checks run."""
    pytest.importorskip('hearvalidator', reason='hearvalidator is not installed (make install installs it)')
    sys.modules.pop('hearvalidator.validate', None)
    if importlib.util.find_spec('tensorflow') is None:
        stand_in = types.ModuleType('tensorflow'); stand_in.Module = type('Module', (), {})
        monkeypatch.setitem(sys.modules, 'tensorflow', stand_in)
    import hearvalidator.validate
    return hearvalidator.validate


OFFICIAL_HERE = ['mfcc', 'classical_audio']   # the musicnn models take 20 s each under the official sizes: make test-paper


@pytest.mark.parametrize('name', [n for n in HEAR_EMBEDDERS if embedder_kind(n) != 'paper'])
def test_official_hearvalidator(name, monkeypatch, capsys):
    if name not in OFFICIAL_HERE and not HAS_TENSORFLOW: pytest.skip('the paper extra runs every module (make test-paper)')
    validate = _official_validator(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)   # musicnn pads the validator's 2-s sounds to its 3-s patch
        validate.ValidateModel(hear_module_name(name), '', device='cpu')()   # raises validate.ModelError on any breach
    assert 'Checking get_scene_embeddings' in capsys.readouterr().out
    sys.modules.pop('hearvalidator.validate', None)


def test_official_hearvalidator_catches_a_broken_module(monkeypatch, tmp_path):
    "The stand-in leaves the official checks able to fail: a module whose timestamps are uneven is refused."
    validate = _official_validator(monkeypatch)
    (tmp_path / 'uneven_hear.py').write_text(TONE_HEAR.replace('stamps = torch.arange(frames.shape[1])', 'stamps = torch.arange(frames.shape[1]) ** 1.1'))
    monkeypatch.syspath_prepend(str(tmp_path)); sys.modules.pop('uneven_hear', None)
    with pytest.raises(validate.ModelError, match='Timestamps should occur at regular intervals'):
        validate.ValidateModel('uneven_hear', '', device='cpu')()
    sys.modules.pop('hearvalidator.validate', None)


def test_own_module_joins_the_wu_selection_grid(tone_module):
    "A grid that names 'hear:<module>' (profile_overrides={'grid_audio_embedders': [...]}) gets it as one of its audio embedders."
    from crossmodal.embedders.choice import resolve_embedder, usable_embedders
    from crossmodal.evaluate.retrieval import selection_grid
    available = usable_embedders('tiny', include=(f'hear:{tone_module}', 'hog_colour', 'mfcc'))
    row = available.set_index('name').loc[f'hear:{tone_module}']
    assert bool(row.available) and row.dim == 16 and row.modality == 'audio'
    grid = selection_grid(['mfcc', f'hear:{tone_module}'], ['hog_colour'], available, verbose=False)
    assert grid.audio.tolist() == ['mfcc', f'hear:{tone_module}'] and grid.audio_dim.tolist()[1] == 16
    assert resolve_embedder(f'hear:{tone_module}', 'audio', 'tiny')[0] == f'hear:{tone_module}'
