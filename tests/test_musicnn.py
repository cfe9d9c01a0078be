"""The musicnn port: NumPy checkpoint reader and PyTorch networks against the original TensorFlow outputs.

`tests/fixtures/musicnn/reference.npz` was made once by `make_reference.py` (same folder) with the original
`musicnn` package on TensorFlow 2.21; these tests need neither TensorFlow nor the network.
"""
import hashlib
from pathlib import Path

import numpy as np
import pytest

from crossmodal.musicnn import (MUSICNN_MODELS, MUSICNN_OUTPUTS, VGG_OUTPUTS, PATCH_FRAMES, checkpoint_entries,
                                checkpoint_prefix, extract, load_musicnn, log_mel, mel_patches, musicnn_tags,
                                read_checkpoint, read_sstable, run_patches)

FIXTURE = Path(__file__).parent / 'fixtures' / 'musicnn' / 'reference.npz'


@pytest.fixture(scope='module')
def reference():
    return np.load(FIXTURE)


def prefix(model): return str(checkpoint_prefix(model)) + '/'


def test_fixture_is_small_and_complete(reference):
    assert FIXTURE.stat().st_size < 1_000_000
    assert reference['inputs'].shape == (3, 48000) and reference['inputs'].dtype == np.float32
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


@pytest.mark.parametrize('model', MUSICNN_MODELS)
def test_port_equals_tensorflow(reference, model):
    patches = np.stack([mel_patches(log_mel(audio))[0] for audio in reference['inputs']])
    ours = run_patches(patches, model)
    for output in (VGG_OUTPUTS if 'vgg' in model else MUSICNN_OUTPUTS):
        # 1e-4 absolute; plus 1e-5 relative for max_pool activations up to ~140, where TensorFlow's own float32
        # summation error reaches ~5e-4 (see the notebook's equivalence section)
        np.testing.assert_allclose(ours[output], reference[f'{model}/{output}'], rtol=1e-5, atol=1e-4,
                                   err_msg=f'{model} {output}')
        if output != 'max_pool':
            assert np.abs(ours[output] - reference[f'{model}/{output}']).max() < 1e-4, (model, output)
    assert list(reference[f'{model}/tags']) == musicnn_tags(model)


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
    from crossmodal.embeddings import get_embedder, available_embedders
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
    with pytest.raises(ValueError, match='unknown layer'):
        get_embedder('MTT_vgg', layer='max_pool')
    with pytest.raises(ValueError, match='pooling'):
        get_embedder('MTT_musicnn', pooling='median')


def test_parameter_counts():
    net = load_musicnn('MTT_musicnn')
    numbers = sum(v.numel() for k, v in net.state_dict().items() if not k.endswith('num_batches_tracked'))
    assert numbers == 792_079 and sum(p.numel() for p in net.parameters()) == 787_159
    assert run_patches(np.zeros((1, PATCH_FRAMES, 96), np.float32), 'MTT_musicnn')['mean_pool'].shape == (1, 753)
