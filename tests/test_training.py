"""crossmodal.training.fit: deterministic on CPU, and its options (groups, extra modules, masked losses, schedule,
precision) work. That it reproduces the loops it replaced is tested beside them (test_translation, test_pictonet)."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from crossmodal.training import fit, index_batches, EarlyStopping


def assert_same_weights(a:nn.Module, b:nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa: assert torch.equal(sa[k], sb[k]), f'{k} differs'


# The loops `fit` replaced are checked against it beside their code: the translation MLP's old loop in
# tests/test_translation.py, PictoNet's in tests/test_pictonet.py (same weights, bit for bit).

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


def test_threads_hold_the_blas_pools_while_training():
    from threadpoolctl import threadpool_info
    seen = []
    def loss(m, b):
        seen.append((torch.get_num_threads(), [p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']))
        return m(b).pow(2).mean()
    fit(nn.Linear(2, 1), loss, [torch.ones(4, 2)], max_epochs=1, num_threads=1, progress=False)
    torch_threads, blas_threads = seen[0]
    assert torch_threads == 1 and blas_threads and all(n == 1 for n in blas_threads), seen


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
