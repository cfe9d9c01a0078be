"""The musicnn port: NumPy checkpoint reader and PyTorch networks against the original TensorFlow outputs.

`crossmodal/resources/musicnn/reference.npz` (package data: notebook 03a prints the equivalence from it) was made once
by `tests/fixtures/musicnn/make_reference.py` with the original
`musicnn` package on TensorFlow 2.21, its `batch_data` unmodified but for the log line computed in float32 (NumPy 1's
arithmetic; the float16 rounding of the mel power kept); these tests need neither TensorFlow nor the network.
"""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from crossmodal.core import package_data

from crossmodal.embedders.musicnn import (MEL_DTYPES, MUSICNN_MODELS, MUSICNN_OUTPUTS, VGG_OUTPUTS, PATCH_FRAMES, checkpoint_prefix, extract, load_musicnn, log_mel, mel_patches, musicnn_tags, run_patches)
from crossmodal.embedders.tf_checkpoint import checkpoint_entries, read_checkpoint, read_sstable

FIXTURE = package_data('musicnn', 'reference.npz')


@pytest.fixture(scope='module')
def reference():
    return np.load(FIXTURE)


def prefix(model): return str(checkpoint_prefix(model)) + '/'


def test_fixture_is_small_and_complete(reference):
    assert FIXTURE.stat().st_size < 1_000_000
    assert reference['inputs'].shape == (3, 48000) and reference['inputs'].dtype == np.float32
    assert reference['patches'].shape == (3, PATCH_FRAMES, 96) and reference['patches'].dtype == np.float32
    assert 'float16' in str(reference['mel_rounding'])  # made with the original's rounding kept
    assert reference['input_overflows_unmodified'].any()  # ... and its NumPy 2 overflow avoided
    for model in MUSICNN_MODELS:
        for output in (VGG_OUTPUTS if 'vgg' in model else MUSICNN_OUTPUTS):
            assert reference[f'{model}/{output}'].shape[0] == 3


@pytest.mark.parametrize('model', MUSICNN_MODELS)
def test_reader_names_shapes_and_values_equal_tensorflow(reference, model):
    weights = read_checkpoint(prefix(model))
    names = list(reference[f'{model}/variable_names'])
    assert sorted(weights) == names  # every variable TF lists (optimiser slots aside), no more
    for name, sha1 in zip(names, reference[f'{model}/variable_sha1']):
        assert hashlib.sha1(np.ascontiguousarray(weights[name]).tobytes()).hexdigest() == sha1, name


def test_reader_entries_and_shapes():
    entries = checkpoint_entries(prefix('MTT_musicnn'))
    assert len(read_sstable(prefix('MTT_musicnn') + '.index')) == 151  # header + 50 variables x 3 (Adam slots)
    assert entries['conv2d/kernel']['shape'] == (7, 38, 1, 204)
    assert entries['conv2d_2/kernel']['shape'] == (128, 1, 1, 51)
    assert entries['conv2d_5/kernel']['shape'] == (7, 561, 1, 64)
    assert entries['dense/kernel']['shape'] == (1506, 200)
    assert entries['dense_1/kernel']['shape'] == (200, 50)
    vgg = read_checkpoint(prefix('MTT_vgg'))
    assert vgg['2CNN/kernel'].shape == (3, 3, 128, 128) and vgg['dense/kernel'].shape == (256, 50)
    assert read_checkpoint(prefix('MTT_vgg'), skip_optimizer=False).keys() > vgg.keys()


def test_reader_rejects_bad_files(tmp_path):
    (tmp_path / 'junk.index').write_bytes(b'\x00' * 100)
    with pytest.raises(ValueError, match='not an SSTable'):
        read_checkpoint(tmp_path / 'junk')
    good = Path(prefix('MTT_vgg'))
    (tmp_path / 'cut.index').write_bytes((good / '.index').read_bytes())
    (tmp_path / 'cut.data-00000-of-00001').write_bytes((good / '.data-00000-of-00001').read_bytes()[:1000])
    with pytest.raises(ValueError, match='truncated'):
        read_checkpoint(tmp_path / 'cut')


def port_patches(reference, mel_dtype):
    return np.stack([mel_patches(log_mel(audio, mel_dtype))[0] for audio in reference['inputs']])


def test_default_front_end_is_the_originals(reference):
    """The default float16 rounding gives the patches the original fed its network, to float32 rounding: identical on
    the machine that made the fixture, within two float32 ulps per value elsewhere (NumPy's float32 log10 and OpenBLAS
    pick their SIMD kernels by processor: AVX2 here moved 30% of the values by 1-2 ulps against an AVX-512 fixture),
    and in any case never a float16 step apart (a librosa change could move a mel value across a rounding boundary)."""
    ours, theirs = port_patches(reference, 'float16'), reference['patches']
    assert (np.abs(ours - theirs) <= 2 * np.spacing(np.abs(theirs))).all()
    assert np.abs(port_patches(reference, 'float32') - theirs).max() > 1e-4  # without the rounding: not the original's


def differences(ours, theirs, output):
    """Largest |ours - theirs|, the same relative to each input's largest |theirs|, and whether the output is within the
    tolerance: 1e-4 absolute, for max_pool 1e-4 of the input's largest |max_pool| (see test_port_equals_tensorflow)."""
    theirs = theirs.reshape(len(theirs), -1); diff = np.abs(ours.reshape(theirs.shape) - theirs)
    largest, relative = float(diff.max()), float((diff.max(1) / np.abs(theirs).max(1)).max())
    return largest, relative, (relative if output == 'max_pool' else largest) < 1e-4


@pytest.mark.parametrize('model', MUSICNN_MODELS)
def test_port_equals_tensorflow(reference, model):
    """Default mode: every output within 1e-4 of the unmodified original: 1e-4 absolute, except max_pool, within 1e-4 of
    the clip's largest max_pool activation. max_pool values reach ~140 and TensorFlow's own float32 summation error in
    its 3,927-term mid-end convolutions reaches ~5e-4 there (the port run in float64 is as far from the float32 port as
    from TF: the notebook's equivalence section); that error scales with the layer's activations as a whole, so it also
    lands on small max_pool values (2.4e-4 on a value of 12.6 in this fixture), hence a tolerance relative to the clip's
    largest activation rather than to each value. The default sits >10x inside it (< 1e-5 of the clip max)."""
    ours = run_patches(port_patches(reference, 'float16'), model)
    for output in (VGG_OUTPUTS if 'vgg' in model else MUSICNN_OUTPUTS):
        largest, relative, within = differences(ours[output], reference[f'{model}/{output}'], output)
        assert within, (model, output, largest, relative)
        assert relative < 1e-4, (model, output, relative)
        if output == 'max_pool': assert relative < 1e-5, (model, relative)
    assert list(reference[f'{model}/tags']) == musicnn_tags(model)


def test_float32_mode_fails_the_tolerance(reference):
    """Without the original's float16 rounding the same tolerance fails: proof that the fixture kept the cast (a fixture
    made without it would be matched by this mode instead)."""
    failed = []
    for model in MUSICNN_MODELS:
        ours = run_patches(port_patches(reference, 'float32'), model)
        for output in (VGG_OUTPUTS if 'vgg' in model else MUSICNN_OUTPUTS):
            largest, relative, within = differences(ours[output], reference[f'{model}/{output}'], output)
            if not within: failed.append((model, output))
            assert largest < 0.05, (model, output, largest)  # still the same network: only the rounding differs
    assert ('MTT_musicnn', 'mean_pool') in failed and ('MTT_musicnn', 'max_pool') in failed, failed
    assert len(failed) >= 5, failed


def test_mel_dtype_option_and_errors(reference):
    audio = reference['inputs'][2]
    assert MEL_DTYPES == ('float16', 'float32')
    default, unrounded = extract(audio, 16000), extract(audio, 16000, mel_dtype='float32')
    np.testing.assert_array_equal(default['penultimate'], extract(audio, 16000, mel_dtype='float16')['penultimate'])
    assert 0 < np.abs(default['mean_pool'] - unrounded['mean_pool']).max() < 0.05
    with pytest.raises(ValueError, match="unknown mel_dtype 'float64'.*'float16'.*'float32'"):
        log_mel(audio, mel_dtype='float64')
    with pytest.raises(ValueError, match="unknown mel_dtype"):
        extract(audio, 16000, mel_dtype=np.float16)
    with pytest.raises(ValueError, match="float16's range.*mel_dtype='float32'"):
        log_mel(2000 * audio)  # far beyond full scale: the float16 mel power would be inf
    assert np.isfinite(log_mel(2000 * audio, mel_dtype='float32')).all()


def test_extract_from_raw_audio_matches_fixture(reference):
    audio = reference['inputs'][2]
    out = extract(audio, 16000, 'MTT_musicnn')
    assert out['taggram'].shape == (1, 50) and out['tags'] == musicnn_tags('MTT_musicnn')
    np.testing.assert_allclose(out['taggram'], reference['MTT_musicnn/taggram'][2:3], atol=1e-4)
    # stereo copies of the same clip, at 22.05 kHz: resampled and downmixed, still one patch
    import librosa
    up = librosa.resample(audio, orig_sr=16000, target_sr=22050, res_type='soxr_hq')
    assert extract(np.stack([up, up]), 22050)['taggram'].shape == (1, 50)


def test_multi_patch_clips_are_not_the_first_patch_repeated(reference):
    """The PyPI extractor repeats the first patch's penultimate for later patches (musicnn #2/#20); the port does not."""
    audio = np.concatenate([reference['inputs'][0], reference['inputs'][2]])
    out = extract(audio, 16000, 'MTT_musicnn')
    assert out['penultimate'].shape == (2, 200)
    assert np.abs(out['penultimate'][0] - reference['MTT_musicnn/penultimate'][0]).max() < 1e-4
    assert np.abs(out['penultimate'][1] - out['penultimate'][0]).max() > 0.1


def test_short_and_bad_audio():
    assert extract(np.full(8000, 0.1, np.float32), 16000)['taggram'].shape == (1, 50)  # padded to one patch
    with pytest.raises(ValueError, match='NaN'):
        extract(np.full(48000, np.nan, np.float32), 16000)
    with pytest.raises(ValueError, match='non-empty'):
        extract(np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match='choose one of'):
        load_musicnn('MSD_musicnn_big')


def test_embedders_registered_with_options():
    from crossmodal.embedders.base import get_embedder, available_embedders
    table = available_embedders('audio').set_index('name')
    for model in MUSICNN_MODELS:
        assert table.loc[model, 'available'], table.loc[model, 'why_not']
    clip = (np.random.default_rng(1).normal(0, 0.1, 2 * 22050).astype(np.float32), 22050)  # 2 s at 22.05 kHz
    expected = dict(MTT_musicnn=200, MSD_musicnn=200, MTT_vgg=256, MSD_vgg=256)
    for model, dim in expected.items():
        with pytest.warns(UserWarning, match='zero-padded'):
            emb = get_embedder(model).embed([clip])
        assert emb.shape == (1, dim) and emb.dtype == np.float32
    e = get_embedder('MTT_musicnn', layer='mean_max_pool', pooling='mean+max')
    assert e.dim == 3012 and e.params()['layer'] == 'mean_max_pool' and e.params()['pooling'] == 'mean+max'
    assert get_embedder('MTT_musicnn').params() != get_embedder('MSD_musicnn').params()
    assert get_embedder('MTT_musicnn').params()['mel_dtype'] == 'float16'
    assert get_embedder('MTT_musicnn', mel_dtype='float32').params() != get_embedder('MTT_musicnn').params()
    with pytest.raises(ValueError, match='unknown mel_dtype'):
        get_embedder('MTT_vgg', mel_dtype='half')
    with pytest.raises(ValueError, match='unknown layer'):
        get_embedder('MTT_vgg', layer='max_pool')
    with pytest.raises(ValueError, match='pooling'):
        get_embedder('MTT_musicnn', pooling='median')


def test_parameter_counts():
    net = load_musicnn('MTT_musicnn')
    numbers = sum(v.numel() for k, v in net.state_dict().items() if not k.endswith('num_batches_tracked'))
    assert numbers == 792_079 and sum(p.numel() for p in net.parameters()) == 787_159
    assert run_patches(np.zeros((1, PATCH_FRAMES, 96), np.float32), 'MTT_musicnn')['mean_pool'].shape == (1, 753)
