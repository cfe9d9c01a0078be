"""crossmodal.neighbours covers the three neighbour metrics it replaces, number for number, and retrieval's unit_rows."""
import numpy as np
import pandas as pd
import pytest

from crossmodal.neighbours import unit_rows, cosine_similarities, zscore, nearest_neighbours, neighbour_labels, neighbour_accuracy


# The three metrics crossmodal.neighbours replaced, as they were (embeddings.nearest_neighbour_accuracy,
# pictonet.knn_accuracy, translation.cross_modal_agreement): the reference implementations the new API must equal.
def nearest_neighbour_accuracy(train_emb, train_labels, test_emb, test_labels, standardise=True):
    from sklearn.neighbors import KNeighborsClassifier
    if len(train_emb) == 0 or len(test_emb) == 0: return float('nan')
    if standardise:
        mean, std = train_emb.mean(0), train_emb.std(0)
        std = np.where(std > 1e-8, std, 1.0)
        train_emb, test_emb = (train_emb - mean) / std, (test_emb - mean) / std
    knn = KNeighborsClassifier(n_neighbors=1, metric='cosine').fit(train_emb, np.asarray(train_labels))
    return float((knn.predict(test_emb) == np.asarray(test_labels)).mean())


def knn_accuracy(train_emb, train_labels, test_emb, test_labels, k=1):
    from sklearn.neighbors import KNeighborsClassifier
    train_emb, test_emb = np.asarray(train_emb, np.float64), np.asarray(test_emb, np.float64)
    mean, std = train_emb.mean(0), train_emb.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    train_emb, test_emb = (train_emb - mean) / std, (test_emb - mean) / std
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_emb)), metric='cosine').fit(train_emb, np.asarray(train_labels))
    return float((knn.predict(test_emb) == np.asarray(test_labels)).mean())


def cross_modal_agreement(query, gallery, query_labels, gallery_labels):
    query, gallery = np.asarray(query, np.float32), np.asarray(gallery, np.float32)
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    nearest = (unit(query) @ unit(gallery).T).argmax(1)
    return float((np.asarray(gallery_labels)[nearest] == np.asarray(query_labels)).mean())


def data(n_query=80, n_gallery=120, dim=16, n_classes=5, seed=0, dtype=np.float32):
    g = np.random.default_rng(seed)
    scale = g.uniform(0.1, 10, dim)   # uneven dimensions, so standardising matters
    centres = g.normal(size=(n_classes, dim))
    gl, ql = g.integers(0, n_classes, n_gallery), g.integers(0, n_classes, n_query)
    gallery = ((centres[gl] + g.normal(size=(n_gallery, dim))) * scale + 3).astype(dtype)
    query = ((centres[ql] + g.normal(size=(n_query, dim))) * scale + 3).astype(dtype)
    return query, ql, gallery, gl


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
@pytest.mark.parametrize('standardise', [True, False])
def test_equals_embeddings_nearest_neighbour_accuracy(seed, dtype, standardise):
    query, ql, gallery, gl = data(seed=seed, dtype=dtype)
    old = nearest_neighbour_accuracy(gallery, gl, query, ql, standardise=standardise)
    assert neighbour_accuracy(query, ql, gallery, gl, standardise=standardise, dtype=None) == old


def test_nearest_neighbour_accuracy_empty_and_string_labels():
    args = (np.eye(3), ['a', 'b', 'c'], np.eye(3) * 2, ['a', 'b', 'x'])
    assert neighbour_accuracy(args[2], args[3], args[0], args[1], standardise=True, dtype=None) == nearest_neighbour_accuracy(*args)
    assert np.isnan(nearest_neighbour_accuracy(np.zeros((0, 2)), [], np.eye(2), [0, 1]))
    assert np.isnan(neighbour_accuracy(np.eye(2), [0, 1], np.zeros((0, 2)), [], standardise=True, dtype=None))


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('k', [1, 2, 3, 4, 5, 8])
def test_equals_pictonet_knn_accuracy(seed, k):
    "Even k gives tied votes on random labels: both follow scikit-learn's rule (the label that sorts first)."
    query, ql, gallery, gl = data(seed=seed)
    assert neighbour_accuracy(query, ql, gallery, gl, k=k, standardise=True, dtype=np.float64) == knn_accuracy(gallery, gl, query, ql, k)


def test_pictonet_knn_accuracy_with_more_voters_than_items_and_string_labels():
    query, ql, gallery, gl = data(n_gallery=4, seed=5)
    names = np.array(['cello', 'flute', 'harp', 'oboe', 'tuba'])
    assert neighbour_accuracy(query, names[ql], gallery, names[gl], k=7, standardise=True, dtype=np.float64) == \
           knn_accuracy(gallery, names[gl], query, names[ql], 7)


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_equals_translation_cross_modal_agreement(seed, dtype):
    query, ql, gallery, gl = data(n_query=300, n_gallery=250, dim=32, seed=seed, dtype=dtype)
    assert neighbour_accuracy(query, ql, gallery, gl) == cross_modal_agreement(query, gallery, ql, gl)
    assert neighbour_accuracy(gallery, gl, query, ql) == cross_modal_agreement(gallery, query, gl, ql)


def test_cross_modal_agreement_ties_zero_rows_and_pandas_labels():
    "Duplicated gallery rows with different labels (exact ties: the first wins), a zero row, labels as Series."
    query, ql, gallery, gl = data(n_query=40, n_gallery=30, seed=7)
    gallery = np.concatenate([gallery, gallery, np.zeros((1, gallery.shape[1]), np.float32)])
    gl = pd.Series(np.concatenate([gl, (gl + 1) % 5, [2]]))
    query[3] = 0
    ql = pd.Series(ql)
    assert neighbour_accuracy(query, ql, gallery, gl) == cross_modal_agreement(query, gallery, ql, gl)


def test_unit_rows_are_unit_rows():
    x = np.random.default_rng(0).normal(size=(20, 7))
    u = unit_rows(x)
    assert u.dtype == np.float32 and np.allclose(np.linalg.norm(u, axis=1), 1, atol=1e-6)
    assert np.allclose(u * np.linalg.norm(x, axis=1, keepdims=True), x, atol=1e-5)   # same directions
    for bad, message in [([[1, 1], [0, 0]], 'row 1 is all zero'), ([[1, np.nan]], 'row 0 is not finite'), ([1, 2], 'must be 2-D')]:
        with pytest.raises(ValueError, match=message): unit_rows(bad, 'queries')


def test_cosine_similarities_against_scikit_learn():
    from sklearn.metrics.pairwise import cosine_similarity
    g = np.random.default_rng(1)
    q, i = g.normal(size=(9, 5)), g.normal(size=(11, 5))
    np.testing.assert_allclose(cosine_similarities(q, i), cosine_similarity(q, i), atol=1e-6)


def test_neighbours_follow_sklearn_and_ties_go_to_the_lower_index():
    from sklearn.neighbors import NearestNeighbors
    query, _, gallery, _ = data(seed=2, dtype=np.float64)
    ref = NearestNeighbors(n_neighbors=6, metric='cosine').fit(gallery).kneighbors(query, return_distance=False)
    assert np.array_equal(nearest_neighbours(query, gallery, k=6, dtype=np.float64), ref)
    tied = np.array([[1., 0], [2, 0], [0, 1], [3, 0]])
    assert nearest_neighbours([[1., 0]], tied, k=3).tolist() == [[0, 1, 3]]
    assert nearest_neighbours([[1., 0]], tied).tolist() == [[0]]


def test_vote_tie_rule_is_sklearns():
    from sklearn.neighbors import KNeighborsClassifier
    g = np.random.default_rng(3)
    gallery, labels = g.normal(size=(30, 4)), g.choice(['b', 'a', 'c'], 30)
    query = g.normal(size=(50, 4))
    for k in (2, 4, 6):
        ours = neighbour_labels(nearest_neighbours(query, gallery, k, np.float64), labels)
        ref = KNeighborsClassifier(k, metric='cosine').fit(gallery, labels).predict(query)
        assert (ours == ref).all()


def _standardise(train, *others):
    "pictonet's `_standardise` as it was (pictonet now uses `zscore`)."
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    return [(a - mean) / std for a in (train, *others)]


def test_zscore_is_pictonets_and_embeddings_standardisation():
    train, test = data(seed=4, dtype=np.float64)[2], data(seed=4, dtype=np.float64)[0]
    train[:, 0] = 1.5   # a constant dimension
    for ours, old in zip(zscore(train, test), _standardise(train, test)): assert np.array_equal(ours, old)


def test_clear_errors():
    with pytest.raises(ValueError, match='k must be at least 1'): nearest_neighbours(np.eye(2), np.eye(2), k=0)
    with pytest.raises(ValueError, match='one label per row'): neighbour_accuracy(np.eye(2), [0], np.eye(2), [0, 1])
    with pytest.raises(ValueError, match="zero must be 'raise' or 'keep'"): unit_rows(np.eye(2), zero='skip')
