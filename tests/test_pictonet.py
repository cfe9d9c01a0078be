"End-to-end checks of `crossmodal.pictonet`: instrument-free corpus, tiny training, cached weights, corrupt files, CLI."
import json, os, time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('CROSSMODAL_QUIET', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')

from crossmodal.core import get_profile, file_sha256, cache_use, RUN_DIR_VARIABLE
import crossmodal.pictonet as pictonet
from crossmodal.data.studio.drawings import INSTRUMENT_EMOJI, cldr_emoji
from crossmodal.pictonet import (CorruptWeights, PictoNetEmbedder, augment_batch, load_pictonet, main,
                                 pretrain_pictonet, pretraining_drawings, render_corpus, weights_dir, instrument_leaks)

P_SMALL = get_profile('tiny', max_items=40)  # 10 code points: a corpus of about a hundred drawings


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    "A private pictonet home holding one small corpus and one trained set of weights for the whole module."
    root = tmp_path_factory.mktemp('pictonet')
    pretrain_pictonet(P_SMALL, 0, root=root, verbose=False)
    return root


def test_corpus_excludes_every_instrument_code_point():
    drawings = pretraining_drawings('studio')
    instruments = cldr_emoji().query("subgroup == 'musical-instrument'").hexcode
    forbidden = set(instruments) | {f'{cp:X}' for cp in INSTRUMENT_EMOJI}
    assert len(forbidden) >= 16
    assert not (set(drawings.hexcode) & forbidden)
    assert len(instrument_leaks(drawings)) == 0
    assert drawings.hexcode.nunique() > 1800 and len(drawings) > 12000  # thousands of classes, several drawings each


def test_corpus_cached_and_damage_detected(root):
    corpus = render_corpus(P_SMALL, root, verbose=False)
    assert corpus.images.dtype == np.uint8 and corpus.images.shape[1:] == (32, 32, 4)
    assert corpus.drawings.hexcode.nunique() == 10 and len(instrument_leaks(corpus.drawings)) == 0
    npy = corpus.folder / 'images.npy'
    data = bytearray(npy.read_bytes()); data[-1] ^= 0xFF; npy.write_bytes(bytes(data))
    again = render_corpus(P_SMALL, root, verbose=False)  # damaged: rendered again, same pixels
    np.testing.assert_array_equal(again.images, corpus.images)
    assert file_sha256(npy) == again.info['sha256']


def test_tiny_training_takes_seconds(tmp_path, root):
    render_corpus(P_SMALL, root, verbose=False)
    (tmp_path / 'corpus').symlink_to(root / 'corpus')  # reuse the rendered corpus, train afresh
    start = time.perf_counter()
    folder = pretrain_pictonet(P_SMALL, 0, root=tmp_path, verbose=False)
    assert time.perf_counter() - start < 30
    meta = json.loads((folder / 'pictonet.json').read_text())
    assert meta['sha256'] == file_sha256(folder / 'pictonet.pt')
    assert (folder / 'loss_curve.png').stat().st_size > 1000
    assert meta['config']['epochs'] == P_SMALL.pretrain_epochs and meta['images'] > 0


def test_cached_weights_give_bit_identical_embeddings(root):
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)) for i in range(5)]
    first = PictoNetEmbedder(P_SMALL, root=root, train_if_missing=False, threads=1).embed(images)
    second = PictoNetEmbedder(P_SMALL, root=root, train_if_missing=False, threads=1).embed(images)
    assert first.shape == (5, 256) and first.dtype == np.float32
    assert np.array_equal(first, second)
    assert PictoNetEmbedder(P_SMALL, root=root).params() == PictoNetEmbedder(P_SMALL, root=root).params()
    rand = PictoNetEmbedder(P_SMALL, root=root, init='random', threads=1)
    assert rand.params()['weights'] != PictoNetEmbedder(P_SMALL, root=root).params()['weights']
    assert np.array_equal(rand.embed(images), PictoNetEmbedder(P_SMALL, root=root, init='random', threads=1).embed(images))


def test_corrupt_weights_detected_reported_and_rebuilt(root):
    path = weights_dir(P_SMALL, 0, root) / 'pictonet.pt'
    good = file_sha256(path)
    data = bytearray(path.read_bytes()); data[len(data) // 2] ^= 0xFF; path.write_bytes(bytes(data))
    with pytest.raises(CorruptWeights, match='SHA-256 does not match.*python -m crossmodal.pictonet --profile tiny'):
        load_pictonet(P_SMALL, 0, root=root, train_if_missing=False)
    encoder, meta = load_pictonet(P_SMALL, 0, root=root, verbose=False)  # default: rebuilt, then used
    assert file_sha256(path) == meta['sha256']
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(CorruptWeights): load_pictonet(P_SMALL, 0, root=root, train_if_missing=False)
    load_pictonet(P_SMALL, 0, root=root, verbose=False)
    assert good  # (the rebuilt file need not equal the first bit for bit; its own hash is what is checked)


def test_missing_weights_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'no pretrained PictoNet weights .*python -m crossmodal.pictonet --profile studio'):
        load_pictonet('studio', 0, root=tmp_path, train_if_missing=False)
    with pytest.raises(ValueError, match="init must be 'pretrained' or 'random'"):
        load_pictonet(P_SMALL, 0, root=tmp_path, init='imagenet')


def test_augment_batch_deterministic_and_bounded():
    rgba = np.zeros((4, 24, 24, 4), np.uint8); rgba[:, 6:18, 6:18] = (10, 200, 30, 255)
    a = augment_batch(rgba, torch.Generator().manual_seed(3))
    b = augment_batch(rgba, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (4, 3, 24, 24) and float(a.min()) >= 0 and float(a.max()) <= 1


def test_registered_in_embeddings_registry():
    import crossmodal.pictonet  # noqa: F401  (registers)
    from crossmodal.embeddings import available_embedders
    row = available_embedders('image').set_index('name').loc['pictonet']
    assert row['dim'] == 256 and row['available']


def test_cli_rejects_unknown_profile(capsys, monkeypatch, root):
    monkeypatch.setenv('CROSSMODAL_HOME', str(root.parent / 'home'))
    (root.parent / 'home').mkdir(exist_ok=True)
    with pytest.raises(SystemExit): main(['--profile', 'nope'])
    assert 'unknown profile' in capsys.readouterr().err


def test_cache_use_counts_corpus_and_weights(tmp_path, monkeypatch, root):
    run = tmp_path / 'run'; run.mkdir()
    monkeypatch.setenv(RUN_DIR_VARIABLE, str(run))
    monkeypatch.setattr(pictonet, '_trained_here', set())
    render_corpus(P_SMALL, root, verbose=False)            # cached corpus: every drawing a hit
    (tmp_path / 'fresh').mkdir(); (tmp_path / 'fresh' / 'corpus').symlink_to(root / 'corpus')
    pretrain_pictonet(P_SMALL, 0, root=tmp_path / 'fresh', verbose=False)   # trained: one miss (the corpus read: hits)
    load_pictonet(P_SMALL, 0, root=tmp_path / 'fresh', verbose=False)       # just trained here: not a hit
    load_pictonet(P_SMALL, 0, root=root, verbose=False)                     # weights from the cache: one hit
    use = cache_use(run).set_index('stage')
    n = len(render_corpus(P_SMALL, root, verbose=False).drawings)
    assert use.loc['render pictogram corpus', ['hits', 'misses']].tolist() == [2 * n, 0]
    assert use.loc['pictonet weights', ['hits', 'misses']].tolist() == [1, 1]
