"""The paired studio data: scenes (one clip, one drawing, nothing re-used), determinism, subsets disjoint by item and by
group, translation blind to the labels, the noise and skew parameters, clear errors."""
import numpy as np
import pandas as pd
import pytest

from crossmodal.data.studio.audio import render_studio_audio
from crossmodal.data.studio.images import render_images
from crossmodal.data.pairs import check_disjoint, distinct_material, make_pairs, make_scenes, paired_classes, scene_pairs
from crossmodal.spaces.translation import train_translation


@pytest.fixture(scope='module')
def manifests(tmp_path_factory):
    root = tmp_path_factory.mktemp('studio')
    return render_studio_audio('tiny', 0, root=root, verbose=False), render_images('tiny', 0, root=root, verbose=False)


def test_same_seed_same_pairs_and_subsets_share_nothing(manifests):
    audio, images = manifests
    first, again = make_pairs(audio, images, 12, seed=3), make_pairs(audio, images, 12, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(make_pairs(audio, images, 12, seed=4))
    check_disjoint(first, audio, images)   # by clip, image and group; no item in two scenes
    test_ids = set(first[first.subset == 'classification_test'].audio_id)
    assert set(audio.set_index('id').loc[list(test_ids), 'split']) == {'test'}   # held-out SoundFont only


def test_noise_and_skew_parameters(manifests):
    audio, images = manifests
    clean = make_pairs(audio, images, 12, pair_noise=0.0, class_skew=0.0)
    t = clean[clean.subset == 'translation']
    assert not t.noisy.any() and (t.label == t.image_label).all()
    assert t.label.value_counts().nunique() == 1                 # balanced: every class at the smallest one's count
    noisy = make_pairs(audio, images, 12, pair_noise=0.5, class_skew=0.0)
    t = noisy[noisy.subset == 'translation']
    assert 0 < t.noisy.mean() <= 0.75                            # drawings passed round among about half the scenes
    assert (t.noisy == (t.label != t.image_label)).all()
    assert not noisy[noisy.subset != 'translation'].noisy.any()  # only the translation subset is noisy
    scenes = {noise: make_scenes(audio, images, 12, pair_noise=noise).query("subset == 'translation'") for noise in (0.0, 0.5)}
    assert sorted(scenes[0.5].image_id) == sorted(scenes[0.0].image_id)   # the same drawings, re-dealt among the scenes
    assert (scenes[0.5].audio_id.to_numpy() == scenes[0.0].audio_id.to_numpy()).all()


def test_skew_thins_distinct_scenes_never_repeats(manifests):
    audio, images = manifests
    wide = make_pairs(audio, images, 200, class_skew=0.0)      # a large cap: every subset as big as its material allows
    skewed = make_pairs(audio, images, 200, class_skew=2.0)
    t, w = skewed[skewed.subset == 'translation'], wide[wide.subset == 'translation']
    assert set(t.audio_id) <= set(w.audio_id) and t.audio_id.is_unique and t.image_id.is_unique
    counts = t.label.value_counts()
    assert counts.max() / counts.min() >= 2 and len(t) < len(w)


def test_translation_never_reads_labels(manifests):
    "Shuffle every label in both manifests: the pairs of every subset and the trained translation are the same."
    audio, images = manifests
    rng = np.random.default_rng(0)
    shuffled_audio = audio.assign(labels=list(rng.permutation(audio.labels.to_numpy())))
    shuffled_images = images.assign(labels=list(rng.permutation(images.labels.to_numpy())))
    scenes = make_scenes(audio, images, 12, seed=0)
    ids = ['pair_id', 'scene', 'subset', 'audio_id', 'image_id']
    unlabelled = lambda p: p[p.subset != 'classification_balanced'][ids]   # the balanced subset is chosen by class: a classification subset
    pairs, blind = scene_pairs(scenes, audio, images), scene_pairs(scenes, shuffled_audio, shuffled_images)
    pd.testing.assert_frame_equal(unlabelled(pairs), unlabelled(blind))
    base = lambda p: p[p.subset != 'classification_balanced'].label.to_numpy()
    assert (base(pairs) != base(blind)).any()                    # the labels did change
    features = lambda manifest, d: np.random.default_rng(d).normal(size=(len(manifest), d)).astype(np.float32)
    def weights(p, a, i):
        t = p[p.subset == 'translation']
        xa = features(a, 6)[a.index.get_indexer(a.reset_index().set_index('id').loc[t.audio_id, 'index'])]
        xi = features(i, 5)[i.index.get_indexer(i.reset_index().set_index('id').loc[t.image_id, 'index'])]
        model, _ = train_translation(xa, xi, seed=0, batch_size=8, max_epochs=2, progress=False)
        return [w.detach().numpy() for w in model.parameters()]
    for w, v in zip(weights(pairs, audio, images), weights(blind, shuffled_audio, shuffled_images)): np.testing.assert_array_equal(w, v)


def test_scenes_are_disjoint_by_group_and_count_their_material(manifests):
    audio, images = manifests
    pairs = make_pairs(audio, images, 200, class_skew=0.0)
    base = pairs[pairs.subset != 'classification_balanced']
    for col, manifest in (('audio_id', audio), ('image_id', images)):
        groups = base.assign(g=base[col].map(manifest.set_index('id').group)).groupby('g').subset.nunique()
        assert groups.max() == 1
    from crossmodal.data.studio.drawings import IMAGE_SETS
    assert IMAGE_SETS['openmoji'].family == IMAGE_SETS['openmoji-black'].family == 'openmoji'   # twin sets: one design
    assert IMAGE_SETS['noto'].family == IMAGE_SETS['noto-v1'].family
    assert (images.group == images.design_family + '/' + images.labels.str[0]).all()           # so twins share a group
    material = distinct_material(pairs, audio, images)
    assert (material.loc[['translation', 'crossmodal', 'classification_train', 'classification_test'], 'clips']
            == material.loc[['translation', 'crossmodal', 'classification_train', 'classification_test'], 'pairs']).all()


def test_scene_table_with_missing_items_is_a_clear_error(manifests):
    audio, images = manifests
    scenes = make_scenes(audio, images, 12)
    with pytest.raises(ValueError, match=r"image id\(s\) of the scene table are not in the image manifest"):
        scene_pairs(scenes, audio, images[images.id != scenes.image_id.iloc[0]])


def test_clear_errors(manifests):
    audio, images = manifests
    with pytest.raises(ValueError, match=r"cannot pair \['mandolin'\]"):
        make_pairs(audio, images, 12, classes=['violin', 'mandolin'])
    with pytest.raises(ValueError, match='pair_noise must be in'):
        make_pairs(audio, images, 12, pair_noise=1.5)
    with pytest.raises(ValueError, match='class_skew must be'):
        make_pairs(audio, images, 12, class_skew=-1)


def test_check_disjoint_catches_a_shared_clip():
    pairs = pd.DataFrame({'subset': ['translation', 'crossmodal'], 'audio_id': ['a', 'a'], 'image_id': ['x', 'y']})
    with pytest.raises(AssertionError, match="audio_id 'a' is in several subsets"):
        check_disjoint(pairs)


def test_paired_classes_reasons(manifests):
    audio, images = manifests
    table = paired_classes(audio, images).set_index('label')
    assert table.loc['violin', 'paired']
    assert not table.loc['harp', 'paired'] and table.loc['harp', 'reason'] == 'no General MIDI sound'
