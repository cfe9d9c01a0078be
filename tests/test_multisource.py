"""End-to-end checks of crossmodal.spaces.multisource (Ferraro et al. 2021) beyond the notebook's: word2vec vectors
identical across processes, an interrupted training leaves no cache entry, tracks masked out of the CF losses leave
training unchanged whatever their CF vectors, and cached models of every kind load back and embed the same."""
import os, subprocess, sys

import numpy as np
import pytest
import torch

import crossmodal.spaces.multisource as ms
from crossmodal.spaces.multisource_data import genre_word2vec

TINY = dict(channels=(4, 4, 8, 8, 8, 8, 16), patch_frames=64, batch_size=3, max_epochs=2, patience=None,
            embedding_dim=8, progress=False)


@pytest.fixture
def tracks():
    "Six training and four validation tracks of 48 × 70 frames, five genres, 6-d CF vectors, two tracks in no playlist."
    rng = np.random.default_rng(0)
    mels = [rng.normal(size=(48, 70)).astype(np.float32) for _ in range(10)]
    ids = np.array([[1, 2], [3, 0], [4, 5], [2, 0], [1, 3], [5, 0], [0, 0], [4, 1], [2, 5], [3, 0]])
    cf = rng.normal(size=(10, 6)).astype(np.float32)
    in_playlist = np.array([1, 1, 0, 1, 1, 0, 1, 1, 1, 1], bool)
    vectors = np.vstack([np.zeros((1, 8)), rng.normal(size=(5, 8))]).astype(np.float32)
    split = lambda rows, c=cf: (mels[rows.start:rows.stop], ids[rows], c[rows], ids[rows].any(1), in_playlist[rows])
    return dict(train=split(slice(0, 6)), valid=split(slice(6, 10)), vectors=vectors, split=split, cf=cf)


W2V = ("import sys, numpy as np; from crossmodal.spaces.multisource_data import genre_word2vec; "
       "lines = [['GN01', 'GN0101'], ['GN01', 'GN0102'], ['GN02', 'GN0201', 'GN0102']] * 30; "
       "np.save(sys.argv[1], genre_word2vec(lines, 12, seed=5)[1])")


def test_word2vec_is_identical_across_processes(tmp_path):
    "gensim 4 with one worker and a seed: the same vectors in processes with different string-hash seeds."
    for i, hash_seed in enumerate(('1', '2')):
        env = {**os.environ, 'PYTHONHASHSEED': hash_seed}
        subprocess.run([sys.executable, '-c', W2V, str(tmp_path / f'{i}.npy')], check=True, env=env, timeout=300)
    assert np.array_equal(np.load(tmp_path / '0.npy'), np.load(tmp_path / '1.npy'))


def test_an_interrupted_training_leaves_no_entry(tracks, tmp_path, monkeypatch):
    "Training stopped part-way, or a write cut short, leaves nothing in the cache that a later call would load."
    def interrupted(*args, **kwargs): raise KeyboardInterrupt
    monkeypatch.setattr(ms, 'fit', interrupted)
    with pytest.raises(KeyboardInterrupt):
        ms.train_multisource('Contr_CF', *tracks['train'], valid=tracks['valid'], cache_dir=tmp_path, **TINY)
    monkeypatch.undo()
    real_save = torch.save
    def cut_short(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        with open(path, 'r+b') as f: f.truncate(100)
        raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', cut_short)
    with pytest.raises(OSError, match='disk full'):
        ms.train_multisource('Contr_CF', *tracks['train'], valid=tracks['valid'], cache_dir=tmp_path, **TINY)
    assert list(tmp_path.rglob('*.pt')) == [] and list(tmp_path.rglob('*.part')) == []


def test_tracks_in_no_playlist_do_not_affect_training(tracks, tmp_path):
    "Contr_CF-G trained twice, the masked tracks' CF vectors replaced by noise the second time: the same weights."
    noisy = tracks['cf'].copy()
    noisy[[2, 5]] = np.random.default_rng(9).normal(scale=50, size=(2, 6))
    first, _ = ms.train_multisource('Contr_CF-G', *tracks['train'], valid=tracks['valid'], vectors=tracks['vectors'], cache_dir=tmp_path, **TINY)
    second, _ = ms.train_multisource('Contr_CF-G', *tracks['split'](slice(0, 6), noisy), valid=tracks['valid'],
                                     vectors=tracks['vectors'], cache_dir=tmp_path, **TINY)
    assert len(list(tmp_path.rglob('*.pt'))) == 2                       # two keys: the data differ
    for (name, p), q in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6), name
    baseline = tracks['split'](slice(0, 6), noisy)
    third, _ = ms.train_multisource('B-line_CF', *baseline[:4], np.ones(6, bool), valid=tracks['valid'], cache_dir=tmp_path, **TINY)
    fourth, _ = ms.train_multisource('B-line_CF', *tracks['train'][:4], np.ones(6, bool), valid=tracks['valid'], cache_dir=tmp_path, **TINY)
    assert not torch.equal(third.cf_head.weight, fourth.cf_head.weight)  # unmasked, the same noise does change training


@pytest.mark.parametrize('variant,genre_variant,layout', [('Contr_G', 'code', 'mel_time'), ('B-line_CF-G', 'paper', 'authors_reshape'),
                                                          ('Contr_CF', 'paper', 'mel_time')])
def test_cached_models_load_back_and_embed_the_same(tracks, tmp_path, variant, genre_variant, layout):
    kw = dict(valid=tracks['valid'], vectors=tracks['vectors'], genre_variant=genre_variant, layout=layout, cache_dir=tmp_path, **TINY)
    trained, history = ms.train_multisource(variant, *tracks['train'], **kw)
    loaded, again = ms.train_multisource(variant, *tracks['train'], **kw)
    assert again.attrs['cached'] and not history.attrs.get('cached', False) and len(again) == len(history)
    mels = tracks['train'][0] + [np.zeros((48, 30), np.float32)]
    for layer in ('phi', 'conv'):
        a, b = ms.embed_tracks(trained, mels, layer=layer)[0], ms.embed_tracks(loaded, mels, layer=layer)[0]
        assert np.allclose(a, b, atol=1e-6) and a.shape == (7, 8 if layer == 'phi' else 16)
    if genre_variant == 'code': assert loaded.genre.embedding.padding_idx is None and loaded.genre.config['variant'] == 'code'


def test_layout_is_part_of_the_key(tracks, tmp_path):
    kw = dict(valid=tracks['valid'], cache_dir=tmp_path, **TINY)
    a, _ = ms.train_multisource('Contr_CF', *tracks['train'], layout='mel_time', **kw)
    b, _ = ms.train_multisource('Contr_CF', *tracks['train'], layout='authors_reshape', **kw)
    assert len(list(tmp_path.rglob('*.pt'))) == 2 and not torch.equal(a.audio.ffb[0].weight, b.audio.ffb[0].weight)
    with pytest.raises(ValueError, match="layout must be one of"):
        ms.train_multisource('Contr_CF', *tracks['train'], layout='time_mel', **kw)


def test_bad_inputs_name_what_is_wrong(tracks, tmp_path):
    train = list(tracks['train'])
    with pytest.raises(ValueError, match='validation inputs disagree on the number of tracks'):
        ms.train_multisource('Contr_CF', *train, valid=tracks['valid'][:4] + (np.ones(3, bool),), cache_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match="unknown variant 'Contr_A'"):
        ms.train_multisource('Contr_A', *train, valid=tracks['valid'], cache_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match='too small for 7 pooling blocks'):
        ms.train_multisource('Contr_CF', *train, valid=tracks['valid'], cache_dir=tmp_path, **{**TINY, 'patch_frames': 32})
