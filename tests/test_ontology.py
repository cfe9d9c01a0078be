"Longer checks of crossmodal.ontology: triplet counts and invariants, relevance at scale, the WordNet build."
import hashlib, itertools, os, warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
import json
from crossmodal.core import package_data
from crossmodal import ontology as O
from crossmodal import wordnet as W


@pytest.fixture(scope='module')
def audioset(): return O.AudioSetOntology()   # the copy the package ships

@pytest.fixture(scope='module')
def hdio_files():
    return {'corrected': O.HDIOntology(), 'published': O.HDIOntology(O.hdio_ontology_path(as_published=True))}


# ---------------------------------------------------------------- the package's own copies

def test_shipped_audioset_ontology_is_the_shared_one(shared_folder):
    assert json.loads(package_data('audioset', 'ontology.json').read_text()) == \
        json.loads((shared_folder / 'data' / 'audioset_ontology.json').read_text())
    assert 'Attribution-ShareAlike 4.0 International' in package_data('audioset', 'LICENSE.txt').read_text()
    assert 'CC BY-SA 4.0' in package_data('audioset', 'README.md').read_text()

@pytest.mark.parametrize('as_published, shared_name', [(False, 'hdio_ontology.json'), (True, 'hdio_as_published.json')])
def test_shipped_hdio_outlines_hold_the_shared_trees(shared_folder, as_published, shared_name):
    "Both nestings, read from the package's outline and from the shared JSON: the same tree, node order included."
    ours, theirs = O.HDIOntology(O.hdio_ontology_path(as_published)), O.HDIOntology(shared_folder / 'data' / shared_name)
    assert ours.nodes == theirs.nodes and ours.roots == theirs.roots
    assert [ours.graph.nodes[n]['leaf'] for n in ours.nodes] == [theirs.graph.nodes[n]['leaf'] for n in theirs.nodes]
    corrected_map = json.loads((shared_folder / 'data' / 'hdio_ontology.json').read_text())['tinysol_label_map']
    assert ours.tinysol_label_map == corrected_map

def test_shipped_published_numbers_match_the_shared_result_files(shared_folder):
    for path in sorted((shared_folder / 'reference' / 'i_can_listen_results').glob('*.csv')):
        assert package_data('published', 'i_can_listen_results', path.name).read_bytes() == path.read_bytes(), path.name

@pytest.fixture(scope='module')
def wordnet(): return W.WordNetOntology()


# ---------------------------------------------------------------- AudioSet

def test_audioset_graph_facts(audioset):
    g = audioset.graph
    assert g.number_of_nodes() == 632
    assert sum(g.in_degree(n) > 1 for n in g) == 38
    assert {audioset.names[p] for p in g.predecessors('/m/0l14jd')} == {'Singing', 'Musical instrument'}
    assert int(audioset.distances.max()) == O.AUDIOSET_C
    assert (audioset.distances == audioset.distances.T).all() and (np.diag(audioset.distances) == 0).all()

def test_distance_uses_every_parent(audioset):
    "Through each of Choir's two parents: one step to either, and the shorter route to each side's relatives."
    choir = '/m/0l14jd'
    for name in ('Singing', 'Musical instrument'): assert audioset.distance(choir, audioset.id_of(name)) == 1
    assert audioset.distance(choir, audioset.id_of('Yodeling')) == 2          # sibling under Singing
    assert audioset.distance(choir, audioset.id_of('Harp')) == 2              # sibling under Musical instrument

def test_relevance_matrix_matches_pairwise_loop(audioset):
    rng = np.random.default_rng(1)
    pool = audioset.ids[:: 7] + [audioset.id_of(n) for n in O.TOP_LABEL_NAMES]
    clips = [list(rng.choice(pool, size=rng.integers(1, 4), replace=False)) for _ in range(60)]
    top = {audioset.id_of(n) for n in O.TOP_LABEL_NAMES}
    for drop in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fast = O.relevance_matrix(audioset, clips[:25], clips, drop_top=drop)
        for i, j in itertools.product(range(25), range(60)):
            a = [l for l in clips[i] if not (drop and l in top)]
            b = [l for l in clips[j] if not (drop and l in top)]
            expected = 0 if not a or not b else O.AUDIOSET_C - min(audioset.distance(x, y) for x in a for y in b)
            assert fast[i, j] == expected, (clips[i], clips[j], drop)

def test_relevance_matrix_scales_to_10k(audioset):
    import time
    rng = np.random.default_rng(0)
    class_ids = O.class_labels(O.WU_CLASSES, 'audioset')
    music = audioset.id_of('Music')
    clips = [[*class_ids[k], music] for k in rng.integers(0, len(class_ids), 10_000)]
    start = time.perf_counter()
    R = O.relevance_matrix(audioset, clips, dtype=np.int8)
    assert time.perf_counter() - start < 30
    assert R.shape == (10_000, 10_000) and R.dtype == np.int8
    assert R.max() == 21 and R.min() >= 0

def test_unknown_label_is_named(audioset):
    with pytest.raises(KeyError, match='/m/nope'): O.relevance_matrix(audioset, [['/m/07y_7']], [['/m/0342h', '/m/nope']])
    with pytest.raises(KeyError, match='Fiddle Violin'): audioset.id_of('Fiddle Violin')
    with pytest.raises(KeyError, match='/m/0342h'): audioset.distance('Guitar', '/m/07y_7')   # a name, not an id

def test_instrument_table_against_audioset(audioset):
    table = O.instrument_classes()
    assert len(table) == len(set(table.name)) and set(O.WU_CLASSES) <= set(table.name)
    for row in table.itertuples():
        ids, names = row.audioset_ids.split(';'), row.audioset_names.split(';')
        assert all(i in audioset.index for i in ids), row.name
        assert [audioset.names[i] for i in ids] == names, row.name
    assert O.instrument_class('voice').audioset_ids == audioset.id_of('Choir')  # Wu et al.: "Choir" to "voice"
    assert O.instrument_class('violin').audioset_ids == '/m/07y_7'
    assert O.instrument_class('guitar').audioset_ids == '/m/0342h'


# ---------------------------------------------------------------- HDIO

@pytest.mark.parametrize('which', ['corrected', 'published'])
def test_tinysol_triplet_counts(hdio_files, which):
    "The counts the issue gives, computed from the files."
    onto = hdio_files[which]
    labels = O.tinysol_hdio_labels(onto)
    assert len(O.hdio_triplets(onto, labels, 'published')) == 237
    assert len(O.hdio_triplets(onto, labels, 'corrected')) == 686

def _brute_force(dist, rule):
    n, out = len(dist), []
    for a, p, q in itertools.permutations(range(n), 3):
        if rule == 'corrected' and dist[a][p] < dist[a][q]: out.append((a, p, q))
        if rule == 'published':
            marked = lambda x: -1 if np.isinf(x) else x
            if p > a and q > a and marked(dist[a][p]) > -1 and marked(dist[a][p]) > marked(dist[a][q]): out.append((a, p, q))
    return sorted(out)

@pytest.mark.parametrize('rule', O.TRIPLET_RULES)
def test_rules_match_a_loop(hdio_files, rule):
    onto = hdio_files['corrected']
    dist = onto.distance_matrix(O.tinysol_hdio_labels(onto))
    assert sorted(map(tuple, O.triplets_from_distances(dist, rule).tolist())) == _brute_force(dist.tolist(), rule)

def _check_invariants(onto, df, rule, labels):
    order = {onto.node(l): k for k, l in enumerate(labels)}
    assert len(df) > 0
    assert (df.anchor_node.astype(str) != df.positive_node.astype(str)).all()
    assert (df.anchor_node.astype(str) != df.negative_node.astype(str)).all()
    assert (df.positive_node.astype(str) != df.negative_node.astype(str)).all()
    assert np.isfinite(df.d_ap).all()                        # (anchor, positive) never linked through the root
    for col in ('anchor', 'positive', 'negative'):           # words follow the nodes
        nodes, texts = df[f'{col}_node'].astype(str), df[col].astype(str)
        assert all(texts.iloc[k] == onto.text(nodes.iloc[k]) for k in range(0, len(df), max(1, len(df) // 500)))
    sample = df.sample(min(len(df), 3000), random_state=0)
    for r in sample.itertuples():                             # stored distances are the tree's
        assert r.d_ap == onto.distance(r.anchor_node, r.positive_node)
        assert r.d_an == onto.distance(r.anchor_node, r.negative_node)
    if rule == 'corrected':
        assert (df.d_ap < df.d_an).all()
    else:
        a, p, n = (df[f'{c}_node'].astype(str).map(order) for c in ('anchor', 'positive', 'negative'))
        assert (p > a).all() and (n > a).all()
        within = np.isfinite(df.d_an)
        assert (df.d_ap[within] > df.d_an[within]).all()     # the published "positive" is the farther one

@pytest.mark.parametrize('which', ['corrected', 'published'])
@pytest.mark.parametrize('rule', O.TRIPLET_RULES)
def test_triplet_invariants_tinysol(hdio_files, which, rule):
    onto = hdio_files[which]
    labels = O.tinysol_hdio_labels(onto)
    _check_invariants(onto, O.hdio_triplets(onto, labels, rule), rule, labels)

@pytest.mark.parametrize('rule', O.TRIPLET_RULES)
def test_triplet_invariants_whole_ontology(hdio_files, rule):
    onto = hdio_files['corrected']
    df = O.hdio_triplets(onto, onto.nodes, rule=rule)   # the TinySOL rule needs its labels spelled out on the whole tree
    _check_invariants(onto, df, rule, onto.nodes)
    texts = set(df.anchor.astype(str)) | set(df.positive.astype(str)) | set(df.negative.astype(str))
    assert 'bowed instruments' in texts and 'violin' in texts and 'instrument instruments' not in texts
    assert df.attrs['dropped_same_text'] > 0                  # "struck instruments" is five nodes
    assert ((df.anchor.astype(str) != df.positive.astype(str)) & (df.positive.astype(str) != df.negative.astype(str))).all()

def test_whole_tree_published_rule_points_to_the_full_tree_code(hdio_files):
    with pytest.raises(ValueError, match='published_full_tree_triplets'): O.hdio_triplets(hdio_files['corrected'], rule='published')

def test_published_nesting_differs_only_where_documented(hdio_files):
    c, p = hdio_files['corrected'], hdio_files['published']
    assert {n.rsplit('/', 1)[-1] for n in c.nodes} == {n.rsplit('/', 1)[-1] for n in p.nodes} | {'electrophone'}
    moved = {n.rsplit('/', 1)[-1] for n in set(c.nodes) ^ set(p.nodes)}
    assert 'violin' not in moved and 'kazoo' in moved and 'theremin' in moved

def test_hdio_errors(hdio_files, tmp_path):
    onto = hdio_files['corrected']
    with pytest.raises(KeyError, match='ambiguous'): onto.node('plucked')
    with pytest.raises(KeyError, match='violn'): onto.distance('violn', 'viola')
    with pytest.raises(FileNotFoundError, match='missing.json; pass the path'): O.HDIOntology(tmp_path / 'missing.json')
    with pytest.raises(ValueError, match='rule'): O.triplets_from_distances(np.zeros((3, 3)), 'paper')


# ---------------------------------------------------------------- WordNet

def test_wordnet_build_is_idempotent():
    root = W.wordnet_nltk_data()
    index = root / 'corpora' / 'wordnet' / 'index.sense'
    stamp = index.stat().st_mtime_ns
    assert W.wordnet_nltk_data() == root and index.stat().st_mtime_ns == stamp
    assert not list(root.glob('.wordnet-build-*'))          # no staging folder left behind

def test_wordnet_build_is_atomic(tmp_path, monkeypatch):
    def boom(folder): raise RuntimeError('interrupted')
    monkeypatch.setattr(W, '_write_index_sense', boom)
    with pytest.raises(RuntimeError, match='interrupted'): W.wordnet_nltk_data(home=tmp_path)
    assert not (tmp_path / 'nltk_data' / 'corpora' / 'wordnet').exists()
    assert not list((tmp_path / 'nltk_data').glob('.wordnet-build-*'))

def test_wordnet_missing_package_names_apt(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install wordnet-base'):
        W.wordnet_nltk_data(home=tmp_path, source=tmp_path / 'no-wordnet')

def test_wordnet_lexnames_and_sense_index(wordnet):
    folder = W.wordnet_nltk_data() / 'corpora' / 'wordnet'
    lex = (folder / 'lexnames').read_text().splitlines()
    assert len(lex) == 45 and lex[3] == '03\tnoun.Tops\t1' and lex[29] == '29\tverb.body\t2'
    wn = wordnet.wn
    for name in ('violin.n.01', 'cornet.n.01', 'bass_horn.n.01', 'viola.n.03', 'long.a.01', 'quickly.r.01', 'run.v.01'):
        for lemma in wn.synset(name).lemmas():
            assert wn.lemma_from_key(lemma.key()) == lemma
    assert wn.lemma('viola.n.03.viola').count() >= 0

def test_nltk_corpus_wordnet_reads_the_folder(wordnet):
    import nltk
    from nltk.corpus import wordnet as nltk_wordnet
    assert str(W.wordnet_nltk_data()) in nltk.data.path
    assert nltk_wordnet.synset('cornet.n.01').definition().startswith('a brass musical instrument')

def test_sense_table_and_traps(wordnet):
    table = O.instrument_classes()
    for row in table.itertuples():
        assert wordnet.is_instrument(row.wordnet) == (row.name != 'voice'), row.name
    assert wordnet.instrument_senses('trumpet') == ['cornet.n.01']
    assert wordnet.instrument_senses('tuba') == ['bass_horn.n.01']
    assert wordnet.instrument_senses('viola') == ['viola.n.03']

@pytest.mark.parametrize('kind', ['audioset', 'hdio', 'wordnet'])
def test_class_distances_have_one_shape(kind, audioset, hdio_files, wordnet):
    onto = {'audioset': audioset, 'hdio': hdio_files['corrected'], 'wordnet': wordnet}[kind]
    for names in (O.TINYSOL_CLASSES, O.WU_CLASSES):
        D = O.class_distance_matrix(names, onto)
        assert D.shape == (len(names), len(names)) and list(D.index) == list(names)
        assert (np.diag(D) == 0).all() and (D.to_numpy() == D.to_numpy().T).all()
        off = D.to_numpy()[~np.eye(len(names), dtype=bool)]
        assert (off > 0).all() or kind == 'hdio'   # HDIO maps 'saxophone' and 'alto saxophone' alike; not in one list
        triplets = O.triplets_from_distances(D.to_numpy())
        assert len(triplets) > 0

def test_wordnet_fresh_build_matches(tmp_path):
    "A build in an empty home reproduces the default home's folder byte for byte."
    fresh, default = (r / 'corpora' / 'wordnet' for r in (W.wordnet_nltk_data(home=tmp_path), W.wordnet_nltk_data()))
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    for name in ('lexnames', 'index.sense', 'data.noun'):
        assert digest(fresh / name) == digest(default / name), name
