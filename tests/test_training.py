"""crossmodal.training.fit: it reproduces the loops it replaces exactly (translation's `_fit`, PictoNet's pretraining
loop), is deterministic on CPU, and its options (groups, extra modules, masked losses, schedule, precision) work."""
import copy, math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from crossmodal.core import seed_everything
from crossmodal.training import fit, index_batches, EarlyStopping


def assert_same_weights(a:nn.Module, b:nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa: assert torch.equal(sa[k], sb[k]), f'{k} differs'


# The translation MLP's equivalence (its old loop against `fit`) lives in tests/test_translation.py, beside its code.

# --- PictoNet pretraining: a copy of its loop against `fit`, on a tiny synthetic corpus ---------------------------

def tiny_corpus(n_classes=4, per_class=3, side=16, seed=0):
    g = np.random.default_rng(seed)
    images = np.zeros((n_classes * per_class, side, side, 4), np.uint8)
    for i in range(len(images)):
        c = i // per_class
        images[i, 2 + c:side - 2, 3:side - 3 - c] = (*g.integers(0, 256, 3), 255)
    return images, np.repeat(np.arange(n_classes), per_class)


CONFIG = dict(widths=[4, 8], blocks=[1, 1], head_dim=8, temperature=0.05, label_smoothing=0.1, epochs=3, draws_per_class=5,
              batch_size=6, lr=3e-3, weight_decay=5e-4, warmup=0.15)


def pictonet_loop(images, labels, config, seed, bf16):
    "The training loop of `pictonet.pretrain_pictonet` as it is today (model built after seeding; no I/O)."
    from crossmodal.embedders.pictonet import PictoNetClassifier, normalise_images
    from crossmodal.embedders.pictograms import augment_batch
    n_classes = int(labels.max()) + 1
    seed_everything(seed)
    model = PictoNetClassifier(n_classes, config['widths'], config['blocks'], config['head_dim'], config['temperature'])
    model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config['lr'], weight_decay=config['weight_decay'])
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    steps_per_epoch = math.ceil(n_classes * config['draws_per_class'] / config['batch_size'])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config['lr'], total_steps=steps_per_epoch * config['epochs'],
                                                   pct_start=config['warmup'], anneal_strategy='cos')
    images = torch.from_numpy(images)
    rng, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    history = []
    model.train()
    for epoch in range(config['epochs']):
        losses, correct, seen = [], 0, 0
        order = np.concatenate([rng.choice(by_class[c], config['draws_per_class'], replace=len(by_class[c]) < config['draws_per_class'])
                                for c in range(n_classes)])
        order = rng.permutation(order)
        for b in range(steps_per_epoch):
            idx = order[b * config['batch_size']:(b + 1) * config['batch_size']]
            if len(idx) < 2: continue
            x = normalise_images(augment_batch(images[idx], g)).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(labels[idx])
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=config['label_smoothing'])
            optimiser.zero_grad(set_to_none=True); loss.backward(); optimiser.step(); schedule.step()
            losses.append(loss.item()); correct += int((logits.argmax(1) == y).sum()); seen += len(idx)
        history.append(dict(epoch=epoch + 1, loss=float(np.mean(losses)), accuracy=correct / max(seen, 1), images=seen,
                            lr=schedule.get_last_lr()[0]))
    return model, pd.DataFrame(history)


def pictonet_with_fit(images, labels, config, seed, bf16):
    "What the PictoNet loop becomes with `fit`: the recipe for `pretrain_pictonet`."
    from crossmodal.embedders.pictonet import PictoNetClassifier, normalise_images
    from crossmodal.embedders.pictograms import augment_batch
    n_classes = int(labels.max()) + 1
    seed_everything(seed)
    model = PictoNetClassifier(n_classes, config['widths'], config['blocks'], config['head_dim'], config['temperature'])
    model = model.to(memory_format=torch.channels_last)
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    steps_per_epoch = math.ceil(n_classes * config['draws_per_class'] / config['batch_size'])
    images, g = torch.from_numpy(images), torch.Generator().manual_seed(seed)

    def batches(rng):
        order = np.concatenate([rng.choice(by_class[c], config['draws_per_class'], replace=len(by_class[c]) < config['draws_per_class'])
                                for c in range(n_classes)])
        order = rng.permutation(order)
        for b in range(steps_per_epoch):
            idx = order[b * config['batch_size']:(b + 1) * config['batch_size']]
            if len(idx) < 2: continue
            yield normalise_images(augment_batch(images[idx], g)).contiguous(memory_format=torch.channels_last), torch.from_numpy(labels[idx])

    def loss(model, batch):
        x, y = batch
        logits = model(x)
        return {'loss': F.cross_entropy(logits.float(), y, label_smoothing=config['label_smoothing']),
                'accuracy': (logits.argmax(1) == y).float().mean()}

    return fit(model, loss, batches, config['epochs'], config['lr'], weights={'loss': 1}, optimiser='adamw',
               weight_decay=config['weight_decay'], schedule='one_cycle', steps_per_epoch=steps_per_epoch, warmup=config['warmup'],
               precision='bf16' if bf16 else 'fp32', weight_by_rows=False, seed=None, rng=np.random.default_rng(seed), progress=False)


@pytest.mark.parametrize('bf16', [False, True])
def test_fit_reproduces_the_pictonet_loop(bf16):
    images, labels = tiny_corpus()
    old_model, old_history = pictonet_loop(images, labels, CONFIG, 0, bf16)
    new_model, new_history = pictonet_with_fit(images, labels, CONFIG, 0, bf16)
    assert_same_weights(old_model, new_model)   # identical weights
    assert old_history.loss.tolist() == new_history.train_loss.tolist()
    assert old_history.lr.tolist() == new_history.lr.tolist()
    # accuracy: correct/seen before, the mean of the batch accuracies now (equal when every batch has the same size)
    np.testing.assert_allclose(old_history.accuracy, new_history.train_accuracy, atol=0.1)


# --- properties ---------------------------------------------------------------------------------------------------

def toy(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return torch.tensor([[0., 2.], [2., -1.], [-2., -1.]])[y] + torch.randn(n, 2, generator=g), y


def test_same_seed_same_weights_with_dropout_and_shuffling():
    x, y = toy()
    def run(seed):
        torch.manual_seed(123)   # same initial weights; the seed of fit decides batches and dropout
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        return fit(model, lambda m, b: F.cross_entropy(m(b[0]), b[1]), lambda rng: [(x[b], y[b]) for b in index_batches(40, 8, rng)],
                   max_epochs=4, seed=seed, progress=False)[0]
    assert_same_weights(run(0), run(0))
    with pytest.raises(AssertionError): assert_same_weights(run(0), run(1))


def test_early_stopping_keeps_the_best_state_and_its_history_flags():
    x, y = toy()
    scores = iter([0.2, 0.5, 0.4, 0.5, 0.45, 0.9])
    seen = []
    def metric(model):
        seen.append(copy.deepcopy(model.state_dict())); return next(scores)
    torch.manual_seed(0)
    model, history = fit(nn.Linear(2, 3), lambda m, b: F.cross_entropy(m(b[0]), b[1]), [(x, y)], max_epochs=6,
                         metrics={'R@10': metric}, patience=3, progress=False)
    assert history.best.tolist() == [True, True, False, False, False]   # 0.5 again is not better; stops after 3
    assert history.attrs['best_epoch'] == 2 and history.attrs['stopped_early']
    for k, v in model.state_dict().items(): assert torch.equal(v, seen[1][k])


def test_fixed_epochs_without_monitoring_keeps_the_last_state():
    x, y = toy()
    torch.manual_seed(0)
    model, history = fit(nn.Linear(2, 3), lambda m, b: F.cross_entropy(m(b[0]), b[1]), [(x, y)], max_epochs=3, progress=False)
    assert len(history) == 3 and 'best' not in history and history.attrs['best_epoch'] is None


def test_zero_epochs_returns_the_model_untouched():
    torch.manual_seed(0)
    model = nn.Linear(2, 3); before = copy.deepcopy(model.state_dict())
    model, history = fit(model, lambda m, b: m(b).sum(), [torch.ones(2, 2)], max_epochs=0, progress=False)
    assert len(history) == 0
    for k, v in model.state_dict().items(): assert torch.equal(v, before[k])


def test_threads_are_restored_and_an_iterator_is_refused():
    before = torch.get_num_threads()
    fit(nn.Linear(2, 1), lambda m, b: m(b).pow(2).mean(), [torch.ones(4, 2)], max_epochs=1, num_threads=1, progress=False)
    assert torch.get_num_threads() == before
    with pytest.raises(TypeError, match='pass a list'):
        fit(nn.Linear(2, 1), lambda m, b: m(b).sum(), iter([torch.ones(4, 2)]), max_epochs=2, progress=False)


def test_a_learnable_temperature_in_extra_is_trained_and_restored_with_the_best_epoch():
    x, y = toy()
    log_tau = nn.ParameterDict({'log_tau': nn.Parameter(torch.zeros(()))})
    torch.manual_seed(0)
    loss = lambda m, b: F.cross_entropy(m(b[0]) / log_tau['log_tau'].exp(), b[1])
    model, history = fit(nn.Linear(2, 3), loss, [(x[:8], y[:8]), (x[8:16], y[8:16])], max_epochs=30, lr=0.05, extra=log_tau,
                         valid_batches=[(x[20:], y[20:])], patience=2, progress=False)
    assert log_tau['log_tau'].item() != 0.0
    valid = F.cross_entropy(model(x[20:]) / log_tau['log_tau'].exp(), y[20:]).item()
    assert valid == pytest.approx(history.valid_loss.min(), rel=1e-6)   # model and temperature both from the kept epoch


def test_early_stopping_rule_matches_translation_for_patience_zero():
    stopper = EarlyStopping('min', patience=0)
    stopper.update(1.0, 1, dict); assert not stopper.stop
    stopper.update(2.0, 2, dict); assert stopper.stop


def test_fp16_needs_a_gpu():
    with pytest.raises(ValueError, match="use 'bf16' or 'fp32'"):
        fit(nn.Linear(2, 1), lambda m, b: m(b).sum(), [torch.ones(2, 2)], max_epochs=1, precision='fp16', device='cpu', progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no GPU')
def test_mixed_precision_on_gpu():
    x, y = toy()
    for precision in ('fp16', 'bf16', 'auto'):
        model, history = fit(nn.Linear(2, 3), lambda m, b: F.cross_entropy(m(b[0]), b[1]), [(x, y)], max_epochs=3,
                             precision=precision, device='cuda', progress=False)
        assert np.isfinite(history.train_loss).all() and next(model.parameters()).is_cuda
