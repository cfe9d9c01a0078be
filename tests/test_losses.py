"""crossmodal.losses: equivalence with pytorch-metric-learning on random tensors, gradients, invariances, limits, errors."""
import math

import numpy as np
import pytest
import torch

from crossmodal.losses import (as_embeddings, pairwise_distances, pair_contrastive_loss, margin_contrastive_loss,
                               mine_triplets, triplet_kinds, triplet_margin_loss, info_nce, nt_xent,
                               NormalizedSoftmax, class_prototypes, prototypical_loss, recall_at_k)

pml = pytest.importorskip('pytorch_metric_learning')
from pytorch_metric_learning import losses as pml_losses, miners as pml_miners, distances as pml_distances, reducers as pml_reducers


def batch(n=12, d=5, n_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    labels = torch.arange(n) % n_classes
    return x, labels


def pair_batch(n=6, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)


# --- reference implementations (pytorch-metric-learning) ---------------------------------------------

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_nt_xent_matches_pml(seed):
    a, b = pair_batch(seed=seed)
    ours = nt_xent(a, b, tau=0.1, reduction='sum')  # L_ab + L_ba, summed over anchors (eq. 9)
    ref = pml_losses.NTXentLoss(temperature=0.1)(torch.cat([a, b]), torch.arange(len(a)).repeat(2))  # mean over 2M anchors
    torch.testing.assert_close(ours / (2 * len(a)), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('seed', [0, 1])
def test_triplet_batch_all_matches_pml(seed):
    x, labels = batch(seed=seed)
    ref_loss = pml_losses.TripletMarginLoss(margin=0.2, distance=pml_distances.LpDistance(power=2),
                                            reducer=pml_reducers.MeanReducer(), triplets_per_anchor='all')
    torch.testing.assert_close(triplet_margin_loss(x, labels, margin=0.2, mining='all'), ref_loss(x, labels), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('strategy', ['hard', 'easy'])
def test_triplet_hard_easy_match_pml_batch_easy_hard_miner(strategy):
    x, labels = batch(seed=3)
    dist = pml_distances.LpDistance(power=2)
    miner = pml_miners.BatchEasyHardMiner(pos_strategy='all', neg_strategy=strategy, distance=dist)
    ref_loss = pml_losses.TripletMarginLoss(margin=0.2, distance=dist, reducer=pml_reducers.MeanReducer())
    torch.testing.assert_close(triplet_margin_loss(x, labels, margin=0.2, mining=strategy), ref_loss(x, labels, miner(x, labels)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('kind', ['easy', 'semihard', 'hard'])
def test_triplet_kinds_match_pml_triplet_margin_miner(kind):
    x, labels = batch(n=15, seed=4)
    dist = pml_distances.LpDistance(power=2)
    ref = pml_miners.TripletMarginMiner(margin=0.3, type_of_triplets=kind, distance=dist)(x, labels)
    d = pairwise_distances(x, normalize=True)
    a, p, n = mine_triplets(d, labels, 'all')
    mask = triplet_kinds(d[a, p], d[a, n], 0.3)[kind]
    ours = sorted(zip(a[mask].tolist(), p[mask].tolist(), n[mask].tolist()))
    assert ours == sorted(zip(*[t.tolist() for t in ref]))


def test_normalized_softmax_matches_pml():
    x, labels = batch(seed=5)
    ours = NormalizedSoftmax(5, 3, temperature=0.05)
    ref = pml_losses.NormalizedSoftmaxLoss(num_classes=3, embedding_size=5, temperature=0.05)
    with torch.no_grad(): ref.W.copy_(ours.proxies.T)
    torch.testing.assert_close(ours(x, labels), ref(x, labels), rtol=1e-5, atol=1e-6)


def test_pairwise_contrastive_matches_hand_loop():
    a, b = pair_batch(n=4, seed=6)
    n = len(a)
    d = lambda u, v: 1 - torch.nn.functional.cosine_similarity(u, v, dim=0)
    pos = sum(0.5 * d(a[i], b[i]) ** 2 for i in range(n)) / n
    neg = sum(0.5 * torch.relu(1 - d(a[i], b[j])) ** 2 for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    torch.testing.assert_close(margin_contrastive_loss(a, b, variant='pairwise'), pos + neg)
    s = lambda u, v: torch.nn.functional.cosine_similarity(u, v, dim=0)
    ranking = sum(torch.clamp(1 - s(a[i], b[i]) + s(a[i], b[j]), min=0) for i in range(n) for j in range(n) if i != j)
    torch.testing.assert_close(margin_contrastive_loss(a, b, variant='ranking', reduction='sum'), ranking)


def test_prototypical_matches_cross_entropy_on_means():
    x, labels = batch(n=9, seed=7)
    q, ql = x[:4] + 0.1, labels[:4]
    means = torch.stack([x[labels == c].mean(0) for c in range(3)])
    logits = -((q[:, None] - means[None]) ** 2).sum(-1)
    torch.testing.assert_close(prototypical_loss(x, labels, q, ql), torch.nn.functional.cross_entropy(logits, ql), rtol=1e-5, atol=1e-6)


# --- gradients flow ------------------------------------------------------------------------------------

LABELLED = {
    'triplet_all': lambda x, y: triplet_margin_loss(x, y, margin=0.5, mining='all'),
    'triplet_hard': lambda x, y: triplet_margin_loss(x, y, margin=0.5, mining='hard'),
    'triplet_semihard': lambda x, y: triplet_margin_loss(x, y, margin=0.5, mining='semihard'),
    'triplet_easy': lambda x, y: triplet_margin_loss(x, y, margin=2.0, mining='easy'),
    'prototypical': lambda x, y: prototypical_loss(x, y, x, y),
}
PAIRED = {
    'pairwise': lambda a, b: margin_contrastive_loss(a, b, variant='pairwise'),
    'ranking': lambda a, b: margin_contrastive_loss(a, b, variant='ranking'),
    'info_nce': lambda a, b: info_nce(a, b),
    'info_nce_sym': lambda a, b: info_nce(a, b, symmetric=True),
    'nt_xent': lambda a, b: nt_xent(a, b),
    'nt_xent_one': lambda a, b: nt_xent(a, b, symmetric=False),
    'siamese': lambda a, b: pair_contrastive_loss(a, b, torch.arange(len(a)) % 2, margin=2.0),
}


@pytest.mark.parametrize('name', LABELLED)
def test_labelled_gradients_flow(name):
    x, labels = batch()
    x.requires_grad_(True)
    loss = LABELLED[name](x, labels)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize('name', PAIRED)
def test_paired_gradients_flow(name):
    a, b = pair_batch()
    a.requires_grad_(True); b.requires_grad_(True)
    PAIRED[name](a, b).backward()
    for g in (a.grad, b.grad): assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_normalized_softmax_gradients_reach_embeddings_and_proxies():
    x, labels = batch()
    x.requires_grad_(True)
    head = NormalizedSoftmax(5, 3)
    head(x, labels).backward()
    assert x.grad.abs().sum() > 0 and head.proxies.grad.abs().sum() > 0


def test_euclidean_distance_gradient_finite_at_zero():
    x = torch.ones(3, 2, requires_grad=True)
    pairwise_distances(x, distance='euclidean').sum().backward()
    assert torch.isfinite(x.grad).all()


# --- invariances ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', LABELLED)
def test_labelled_permutation_invariance(name):
    x, labels = batch(seed=8)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(LABELLED[name](x, labels), LABELLED[name](x[perm], labels[perm]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', [n for n in PAIRED if n != 'siamese'])
def test_paired_permutation_invariance(name):
    a, b = pair_batch(seed=9)
    perm = torch.randperm(len(a), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(PAIRED[name](a, b), PAIRED[name](a[perm], b[perm]), rtol=1e-5, atol=1e-6)


def test_cosine_losses_are_scale_invariant():
    a, b = pair_batch(seed=10)
    for name in ['pairwise', 'ranking', 'info_nce', 'nt_xent']:
        torch.testing.assert_close(PAIRED[name](a, b), PAIRED[name](3 * a, 0.5 * b), rtol=1e-5, atol=1e-6)


def test_nt_xent_symmetric_is_sum_of_directions():
    a, b = pair_batch(seed=11)
    torch.testing.assert_close(nt_xent(a, b), nt_xent(a, b, symmetric=False) + nt_xent(b, a, symmetric=False))


# --- known limits --------------------------------------------------------------------------------------

@pytest.mark.parametrize('n', [2, 5, 16])
def test_all_equal_embeddings(n):
    same = torch.ones(n, 3)
    assert math.isclose(info_nce(same, same).item(), math.log(n), rel_tol=1e-5)
    assert math.isclose(info_nce(same, same, symmetric=True).item(), math.log(n), rel_tol=1e-5)
    assert math.isclose(nt_xent(same, same, symmetric=False).item(), math.log(2 * n - 1), rel_tol=1e-5)
    assert math.isclose(nt_xent(same, same).item(), 2 * math.log(2 * n - 1), rel_tol=1e-5)
    # ranking hinge: every term is the margin; pairwise: positives 0, negatives ½·margin²
    assert math.isclose(margin_contrastive_loss(same, same, variant='ranking').item(), 1.0, rel_tol=1e-5)
    assert math.isclose(margin_contrastive_loss(same, same, variant='pairwise').item(), 0.5, rel_tol=1e-5)


def test_identical_pairs_with_distinct_negatives_reach_the_minimum():
    eye = torch.eye(6)
    assert margin_contrastive_loss(eye, eye, variant='ranking').item() == 0
    assert margin_contrastive_loss(eye, eye, variant='pairwise').item() < 1e-12
    assert info_nce(eye, eye, temperature=0.01).item() < 1e-12
    labels = torch.arange(6) // 2
    clusters = torch.eye(3)[labels]  # items of a class identical, classes orthogonal: squared distance 2 > α
    assert triplet_margin_loss(clusters, labels, margin=0.5, mining='hard').item() == 0
    assert prototypical_loss(10 * clusters, labels, 10 * clusters, labels).item() < 1e-12


def test_semihard_prefers_negatives_inside_the_margin():
    x = torch.tensor([[0.], [1.], [1.2], [5.]])
    labels = torch.tensor([0, 0, 1, 1])
    a, p, n = mine_triplets(pairwise_distances(x), labels, 'semihard')
    assert n[(a == 0) & (p == 1)].item() == 2  # 1.44 is the closest negative farther than d_ap = 1


def test_recall_at_k_perfect_clusters():
    labels = torch.arange(8) // 2
    assert recall_at_k(torch.eye(4)[labels] + 0.01 * torch.randn(8, 4), labels, ks=(1,)) == {1: 1.0}


# --- bad input -----------------------------------------------------------------------------------------

def test_mismatched_batch_sizes():
    a, b = pair_batch()
    for f in (lambda: info_nce(a, b[:-1]), lambda: nt_xent(a, b[:-1]), lambda: margin_contrastive_loss(a, b[:-1]),
              lambda: pair_contrastive_loss(a, b[:-1], torch.ones(len(a)))):
        with pytest.raises(ValueError, match='rows but 6 were expected'): f()
    with pytest.raises(ValueError, match='one label per embedding'): triplet_margin_loss(a, [0, 1])


def test_non_finite_embeddings():
    a, b = pair_batch()
    a[2, 1] = float('inf')
    with pytest.raises(ValueError, match=r'queries holds NaN or infinite values in row\(s\) \[2\]'): info_nce(a, b)
    with pytest.raises(ValueError, match='psi_a holds NaN'): nt_xent(a, b)
    x, labels = batch()
    x[0, 0] = float('nan')
    with pytest.raises(ValueError, match='embeddings holds NaN'): triplet_margin_loss(x, labels)


def test_one_class_batch_for_a_miner():
    x, _ = batch()
    for strategy in ('all', 'hard', 'semihard', 'easy'):
        with pytest.raises(ValueError, match='needs at least two classes'): triplet_margin_loss(x, torch.zeros(len(x), dtype=torch.long), mining=strategy)
    with pytest.raises(ValueError, match='a class with at least two items'): triplet_margin_loss(x, torch.arange(len(x)))
    with pytest.raises(ValueError, match='at least two classes in the support set'): prototypical_loss(x, torch.zeros(len(x), dtype=torch.long), x, torch.zeros(len(x), dtype=torch.long))


def test_other_bad_arguments():
    a, b = pair_batch()
    with pytest.raises(ValueError, match='unknown mining strategy'): triplet_margin_loss(a, torch.arange(6) % 2, mining='random')
    with pytest.raises(ValueError, match='unknown reduction'): info_nce(a, b, reduction='max')
    with pytest.raises(ValueError, match='temperature must be positive'): info_nce(a, b, temperature=0)
    with pytest.raises(ValueError, match='at least 2 pairs'): nt_xent(a[:1], b[:1])
    with pytest.raises(TypeError, match='integer class ids'): triplet_margin_loss(a, torch.ones(6))
    with pytest.raises(ValueError, match='dimension 4, the proxies 5'): NormalizedSoftmax(5, 3)(a, torch.zeros(6, dtype=torch.long))
