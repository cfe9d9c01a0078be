"""Ontology probes: the published full-tree triplets against the fact sheet's files, and the invariances of the scores."""
from pathlib import Path

import numpy as np
import pytest

from crossmodal import ontology as O
from crossmodal.evaluate import probes as T

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data'

@pytest.mark.skipif(not (SHARED / 'hdio_as_published.json').exists(), reason='no ../shared beside the checkout')
def test_full_tree_triplets_from_the_shared_published_tree():
    tree, _ = O.read_hdio(SHARED / 'hdio_as_published.json')
    table, triplets = T.published_full_tree_triplets(tree)
    assert len(table) == len(triplets) == 434_116
    assert (table.kind == 'positive only through the top (brace error)').sum() == 206_115

def test_the_shipped_published_tree_matches_the_shared_one():
    if not (SHARED / 'hdio_as_published.json').exists(): pytest.skip('no ../shared beside the checkout')
    shipped, _ = O.read_hdio(O.hdio_ontology_path(as_published=True))
    assert T.flatten_published(shipped) == T.flatten_published(O.read_hdio(SHARED / 'hdio_as_published.json')[0])

def test_accuracy_is_invariant_to_relabelling_terms():
    rng = np.random.default_rng(3)
    dist = np.abs(np.subtract.outer(np.arange(9.), np.arange(9.)))
    trip = O.triplets_from_distances(dist)
    emb = rng.standard_normal((9, 5)); perm = rng.permutation(9)
    inverse = np.argsort(perm)   # term i's embedding moves to row inverse[i]; the triplets follow it
    moved = T.triplet_accuracy(T.cosine_similarity(emb[perm]), inverse[trip])
    assert moved == T.triplet_accuracy(T.cosine_similarity(emb), trip)
    assert T.triplet_accuracy(T.cosine_similarity(emb * 7.0), trip) == T.triplet_accuracy(T.cosine_similarity(emb), trip)   # scale-free

def test_oracle_ceilings_on_tinysol():
    onto = O.HDIOntology()
    dist = onto.distance_matrix(O.tinysol_hdio_labels(onto))
    oracle = T.oracle_similarity(dist)
    assert T.triplet_accuracy(oracle, O.triplets_from_distances(dist, 'corrected')) == 1.0
    assert T.triplet_accuracy(oracle, O.triplets_from_distances(dist, 'published')) == pytest.approx(170 / 237)

def test_a_zero_embedding_is_named():
    with pytest.raises(ValueError, match='term embeddings row 1'): T.cosine_similarity(np.array([[1., 0], [0, 0]]))
