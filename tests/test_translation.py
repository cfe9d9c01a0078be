"""Translation (Wu et al. 2021 §2.2): pairing embeddings, the trainer, the PCA baseline, on tiny studio data; clear errors.
The trainer runs through `crossmodal.training.fit`; the loop it replaced is kept below as the reference it must equal,
weight for weight, together with the cache key the models were stored under."""
import copy, math

import numpy as np
import pandas as pd
import pytest
import torch

from crossmodal.core import content_hash, seed_everything
from crossmodal.data.pairs import make_pairs
from crossmodal.embedders.choice import pair_embeddings, resolve_embedder, studio_embeddings
from crossmodal.neighbours import neighbour_accuracy
from crossmodal.spaces.translation import (Translator, fit_pca, shared_pca_components, train_translation, translate,
                                           translation_cache_path, translation_loss)


# --- the loop `train_translation` had before it used `fit` (translation._fit), as it was ----------------------------

def old_batches(n, batch_size, rng):
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return np.array_split(order, max(1, math.ceil(n / batch_size)))


def old_mean_loss(model, audio_x, image_x, batch_size, loss_kw):
    model.eval()
    with torch.no_grad():
        parts = [(translation_loss(*model(audio_x[b], image_x[b]), **loss_kw).item(), len(b))
                 for b in old_batches(len(audio_x), batch_size, None)]
    return sum(l * n for l, n in parts) / sum(n for _, n in parts)


def old_fit(audio_x, image_x, seed, n_train, n_valid, batch_size, patience, max_epochs, device, lr, loss_kw):
    rng = seed_everything(seed)
    perm = rng.permutation(len(audio_x)); valid_idx, train_idx = perm[:n_valid], perm[n_valid:]
    model = Translator(audio_x.shape[1], image_x.shape[1]).set_standardisation(audio_x[train_idx], image_x[train_idx]).to(device)
    t = lambda x: torch.as_tensor(x, device=device)
    a_tr, i_tr, a_va, i_va = t(audio_x[train_idx]), t(image_x[train_idx]), t(audio_x[valid_idx]), t(image_x[valid_idx])
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history, best, best_state, waited = [], math.inf, None, 0
    for epoch in range(1, max_epochs + 1):
        model.train(); total = 0.0
        for b in old_batches(n_train, batch_size, rng):
            optimiser.zero_grad()
            batch_loss = translation_loss(*model(a_tr[b], i_tr[b]), **loss_kw)
            batch_loss.backward(); optimiser.step()
            total += batch_loss.item() * len(b)
        valid_loss = old_mean_loss(model, a_va, i_va, min(batch_size, n_valid), loss_kw)
        improved = valid_loss < best
        history.append(dict(epoch=epoch, train_loss=total / n_train, valid_loss=valid_loss, best=improved))
        if improved: best, best_state, waited = valid_loss, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= patience: break
    model.load_state_dict(best_state); model.eval()
    history = pd.DataFrame(history)
    history.attrs.update(batch_size=batch_size, n_train=n_train, n_valid=n_valid, loss=loss_kw['loss'], device=device,
                         stopped_early=len(history) < max_epochs, best_epoch=int(history.loc[history.valid_loss.idxmin(), 'epoch']))
    return model, history


def paired_data(n=48, d_audio=7, d_image=5, seed=0):
    g = np.random.default_rng(seed)
    shared = g.normal(size=(n, 3))
    return ((shared @ g.normal(size=(3, d_audio)) + 0.5 * g.normal(size=(n, d_audio))).astype(np.float32),
            (shared @ g.normal(size=(3, d_image)) + 0.5 * g.normal(size=(n, d_image))).astype(np.float32))


@pytest.mark.parametrize('loss,batch_size,patience,seed,n', [('margin', 8, 2, 0, 48), ('infonce', 12, 3, 1, 48),
                                                              ('ranking', 7, 1, 2, 48), ('margin', 32, 2, 3, 30)])
def test_train_translation_equals_the_loop_it_replaced(loss, batch_size, patience, seed, n):
    audio_x, image_x = paired_data(n=n, seed=seed)
    n_valid = max(2, round(0.1 * n)); n_train = n - n_valid
    threads = torch.get_num_threads(); torch.set_num_threads(1)   # as train_translation trained it: one CPU thread
    try: old_model, old_history = old_fit(audio_x, image_x, seed, n_train, n_valid, min(batch_size, n_train), patience, 60,
                                          'cpu', 3e-3, dict(loss=loss, margin=1.0, temperature=0.1))
    finally: torch.set_num_threads(threads)
    new_model, new_history = train_translation(audio_x, image_x, seed=seed, loss=loss, lr=3e-3, batch_size=batch_size,
                                               patience=patience, max_epochs=60, device='cpu', progress=False)
    old_state, new_state = old_model.state_dict(), new_model.state_dict()
    assert list(old_state) == list(new_state)
    for k in old_state: assert torch.equal(old_state[k], new_state[k]), f'{k} differs'
    pd.testing.assert_frame_equal(old_history, new_history, check_exact=True)
    assert new_history.attrs == old_history.attrs   # the same notes, nothing added (they are stored with cached models)
    assert new_model.history is new_history
    assert old_history.attrs['stopped_early'] and old_history.attrs['best_epoch'] < len(old_history)   # the rule was exercised


def test_models_are_cached_under_the_key_they_had(tmp_path):
    "The key of a cached model is the one `train_translation` used before the move, so cached models are found again."
    audio_x, image_x = paired_data(n=40, seed=5)
    model, history = train_translation(audio_x, image_x, seed=2, batch_size=32, max_epochs=3, patience=2, device='cpu',
                                       progress=False, cache=tmp_path)
    old_key = content_hash(audio_x, image_x, seed=2, lr=1e-3, batch_size=32, valid_fraction=0.1, patience=2, max_epochs=3,
                           device='cpu', version=1, loss='margin', margin=1.0, temperature=0.1)
    assert [p.name for p in tmp_path.iterdir()] == [f'{old_key}.pt']
    settings = dict(seed=2, lr=1e-3, batch_size=32, valid_fraction=0.1, patience=2, max_epochs=3, device='cpu', loss='margin',
                    margin=1.0, temperature=0.1)
    assert translation_cache_path(tmp_path, audio_x, image_x, settings).name == f'{old_key}.pt'
    again, cached = train_translation(audio_x, image_x, seed=2, batch_size=32, max_epochs=3, patience=2, device='cpu',
                                      progress=False, cache=tmp_path)
    assert cached.attrs['cached'] and {k: v for k, v in cached.attrs.items() if k != 'cached'} == history.attrs
    np.testing.assert_array_equal(translate(again, audio_x, 'audio'), translate(model, audio_x, 'audio'))


def test_the_trainer_takes_its_settings_not_a_profile():
    audio_x, image_x = paired_data(n=30)
    with pytest.raises(TypeError, match='positional argument'):
        train_translation(audio_x, image_x, 'tiny')
    _, history = train_translation(audio_x, image_x, batch_size=4096, max_epochs=1, progress=False)
    assert history.attrs['batch_size'] == history.attrs['n_train'] == 27   # the batch is cut to the training pairs


# --- on the tiny studio data ------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def studio():
    audio_manifest, image_manifest, audio_emb, image_emb = studio_embeddings('tiny', 0, 'mfcc', 'hog_colour')
    pairs = make_pairs(audio_manifest, image_manifest, 12, 0)
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
        train_translation(xa, xi[:-3], progress=False)
    with pytest.raises(ValueError, match='5 audio rows but 4 image rows'):
        shared_pca_components(xa[:5], xi[:4])


def test_training_on_tiny_studio_pairs(studio):
    pairs, am, im, ae, ie = studio
    xa, xi, _ = pair_embeddings(pairs, am, im, ae, ie, 'translation')
    model, history = train_translation(xa, xi, seed=0, batch_size=32, max_epochs=4, patience=10, progress=False)
    assert list(history.epoch) == [1, 2, 3, 4] and history.attrs['batch_size'] == min(32, history.attrs['n_train'])
    assert np.isfinite(history[['train_loss', 'valid_loss']].to_numpy()).all()
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    ca, ci, rows = pair_embeddings(pairs, am, im, ae, ie, 'crossmodal')
    za, zi = translate(model, ca, 'audio'), translate(model, ci, 'image')
    assert za.shape == (len(ca), 128) and zi.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(zi, axis=1), 1, atol=1e-5)
    assert 0 <= neighbour_accuracy(za, rows.label, zi, rows.image_label) <= 1
    again, _ = train_translation(xa, xi, seed=0, batch_size=32, max_epochs=4, patience=10, progress=False)
    np.testing.assert_allclose(translate(again, ca, 'audio'), za, atol=1e-5)     # same seed, same model
    assert shared_pca_components(xa, xi) == min(128, xa.shape[1], xi.shape[1], len(xa))


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


def test_wu_inputs_is_the_preamble_of_05_and_07(capsys):
    "`wu_inputs` does what the experiments did by hand: notice, resolve, pairs, embed, pair the translation subset."
    from crossmodal.data.audioset_pairs import wu_pairs
    from crossmodal.embedders.choice import RANDOM_WEIGHTS_NOTICE, embed_manifests, wu_inputs
    inputs = wu_inputs('tiny', 0, 'mfcc', 'no_such_model', weights='random', progress=False)
    out = capsys.readouterr().out
    assert RANDOM_WEIGHTS_NOTICE in out and "image embedder 'no_such_model' not registered" in out
    assert f'embedding pair: mfcc × {inputs.image_name}' in out
    audio_manifest, image_manifest, pairs = wu_pairs('tiny', 0, verbose=False)
    pd.testing.assert_frame_equal(inputs.pairs, pairs)
    audio_emb, image_emb = embed_manifests(audio_manifest, image_manifest, 'mfcc', inputs.image_name, 'tiny')
    np.testing.assert_array_equal(inputs.image_emb, image_emb)
    audio_x, image_x, rows = pair_embeddings(pairs, audio_manifest, image_manifest, audio_emb, image_emb, 'translation')
    np.testing.assert_array_equal(inputs.audio_x, audio_x); np.testing.assert_array_equal(inputs.image_x, image_x)
    pd.testing.assert_frame_equal(inputs.translation_pairs, rows)
    name, image_name, *_ = inputs                                   # the experiments unpack it
    assert name == inputs.audio_name == 'mfcc' and image_name == inputs.image_name


def test_resolve_embedder_fallback():
    assert resolve_embedder('hog_colour', 'image') == ('hog_colour', None)
    name, note = resolve_embedder('definitely_not_registered', 'audio')
    assert note and 'not registered' in note and name != 'definitely_not_registered'
