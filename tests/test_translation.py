"""Translation (Wu et al. 2021 §2.2): pairing embeddings, the trainer, the PCA baseline, on tiny studio data; clear errors."""
import numpy as np
import pandas as pd
import pytest
import torch

from crossmodal.translation import (Translator, cross_modal_agreement, fit_pca, pair_embeddings, resolve_embedder,
                                    studio_embeddings, train_translation, translate, translation_loss)
from crossmodal.data.pairs import make_pairs


@pytest.fixture(scope='module')
def studio():
    audio_manifest, image_manifest, audio_emb, image_emb = studio_embeddings('tiny', 0, 'mfcc', 'hog_colour')
    pairs = make_pairs(audio_manifest, image_manifest, 'tiny', 0)
    return pairs, audio_manifest, image_manifest, audio_emb, image_emb


def test_pairing_aligns_each_pair(studio):
    pairs, am, im, ae, ie = studio
    xa, xi, rows = pair_embeddings(pairs, am, im, ae, ie, 'translation')
    assert len(xa) == len(xi) == len(rows) == (pairs.subset == 'translation').sum()
    k = len(rows) // 2
    assert np.array_equal(xa[k], ae[am.index[am.id == rows.audio_id[k]][0]])
    assert np.array_equal(xi[k], ie[im.index[im.id == rows.image_id[k]][0]])


def test_item_count_mismatch_is_a_clear_error(studio):
    pairs, am, im, ae, ie = studio
    with pytest.raises(ValueError, match='image_emb has .* rows but the image manifest has'):
        pair_embeddings(pairs, am, im, ae, ie[:-1], 'translation')
    xa, xi, _ = pair_embeddings(pairs, am, im, ae, ie, 'translation')
    with pytest.raises(ValueError, match='audio rows but .* image rows'):
        train_translation(xa, xi[:-3], 'tiny', progress=False)


def test_batch_larger_than_the_profile_allows(studio):
    pairs, am, im, ae, ie = studio
    xa, xi, _ = pair_embeddings(pairs, am, im, ae, ie, 'crossmodal')
    with pytest.raises(ValueError, match=r'batch_size 4096 is larger than the \d+ training pairs of this profile \(tiny\)'):
        train_translation(xa, xi, 'tiny', batch_size=4096, progress=False)


def test_training_on_tiny_studio_pairs(studio):
    pairs, am, im, ae, ie = studio
    xa, xi, _ = pair_embeddings(pairs, am, im, ae, ie, 'translation')
    model, history = train_translation(xa, xi, 'tiny', seed=0, max_epochs=4, patience=10, progress=False)
    assert list(history.epoch) == [1, 2, 3, 4] and history.attrs['batch_size'] == 32
    assert np.isfinite(history[['train_loss', 'valid_loss']].to_numpy()).all()
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    ca, ci, rows = pair_embeddings(pairs, am, im, ae, ie, 'crossmodal')
    za, zi = translate(model, ca, 'audio'), translate(model, ci, 'image')
    assert za.shape == (len(ca), 128) and zi.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(zi, axis=1), 1, atol=1e-5)
    assert 0 <= cross_modal_agreement(za, zi, rows.label, rows.image_label) <= 1
    again, _ = train_translation(xa, xi, 'tiny', seed=0, max_epochs=4, patience=10, progress=False)
    np.testing.assert_allclose(translate(again, ca, 'audio'), za, atol=1e-5)     # same seed, same model


def test_translate_checks_modality_and_dimension():
    model = Translator(4, 6)
    with pytest.raises(ValueError, match="modality must be one of"):
        translate(model, np.zeros((2, 4)), 'text')
    with pytest.raises(ValueError, match='input has dimension 6, the tower expects 4'):
        translate(model, np.zeros((2, 6)), 'audio')


def test_losses_and_pca():
    e = torch.eye(4)
    for loss in ('margin', 'ranking'): assert translation_loss(e, e, loss).item() == pytest.approx(0, abs=1e-6)
    assert translation_loss(e, e, 'infonce').item() < translation_loss(e, e.roll(1, 0), 'infonce').item()
    x = np.random.default_rng(0).normal(size=(30, 200)).astype(np.float32)
    assert fit_pca(x, 128, verbose=False).n_components_ == 30                    # fewer rows than components
    with pytest.raises(ValueError, match='at least 2 rows'):
        fit_pca(x[:1])


def test_resolve_embedder_fallback():
    assert resolve_embedder('hog_colour', 'image') == ('hog_colour', None)
    name, note = resolve_embedder('definitely_not_registered', 'audio')
    assert note and 'not registered' in note and name != 'definitely_not_registered'
