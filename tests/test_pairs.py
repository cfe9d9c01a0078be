"""The paired studio data: determinism, disjoint subsets, the noise and skew parameters, clear errors."""
import numpy as np
import pandas as pd
import pytest

from crossmodal.data.studio.audio import render_studio_audio
from crossmodal.data.studio.images import render_images
from crossmodal.data.pairs import check_disjoint, make_pairs, paired_classes


@pytest.fixture(scope='module')
def manifests(tmp_path_factory):
    root = tmp_path_factory.mktemp('studio')
    return render_studio_audio('tiny', 0, root=root, verbose=False), render_images('tiny', 0, root=root, verbose=False)


def test_same_seed_same_pairs_and_subsets_share_nothing(manifests):
    audio, images = manifests
    first, again = make_pairs(audio, images, 'tiny', seed=3), make_pairs(audio, images, 'tiny', seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(make_pairs(audio, images, 'tiny', seed=4))
    check_disjoint(first)
    test_ids = set(first[first.subset == 'classification_test'].audio_id)
    assert set(audio.set_index('id').loc[list(test_ids), 'split']) == {'test'}   # held-out SoundFont only


def test_noise_and_skew_parameters(manifests):
    audio, images = manifests
    clean = make_pairs(audio, images, 'tiny', pair_noise=0.0, class_skew=0.0)
    t = clean[clean.subset == 'translation']
    assert not t.noisy.any() and (t.label == t.image_label).all()
    counts = t.label.value_counts()
    assert counts.max() - counts.min() <= 1                      # balanced
    noisy = make_pairs(audio, images, 'tiny', pair_noise=0.5, class_skew=2.0)
    t = noisy[noisy.subset == 'translation']
    assert 0.3 < t.noisy.mean() < 0.7
    assert (t.noisy == (t.label != t.image_label)).all()
    counts = t.label.value_counts()
    assert counts.max() / counts.min() > 10                      # Zipf with exponent 2 over several classes
    other = noisy[noisy.subset != 'translation']
    assert not other.noisy.any()                                 # only the translation subset is noisy


def test_clear_errors(manifests):
    audio, images = manifests
    with pytest.raises(ValueError, match=r"cannot pair \['mandolin'\]"):
        make_pairs(audio, images, 'tiny', classes=['violin', 'mandolin'])
    with pytest.raises(ValueError, match='pair_noise must be in'):
        make_pairs(audio, images, 'tiny', pair_noise=1.5)
    with pytest.raises(ValueError, match='class_skew must be'):
        make_pairs(audio, images, 'tiny', class_skew=-1)


def test_check_disjoint_catches_a_shared_clip():
    pairs = pd.DataFrame({'subset': ['translation', 'crossmodal'], 'audio_id': ['a', 'a'], 'image_id': ['x', 'y']})
    with pytest.raises(AssertionError, match="audio_id 'a' is in several subsets"):
        check_disjoint(pairs)


def test_paired_classes_reasons(manifests):
    audio, images = manifests
    table = paired_classes(audio, images).set_index('label')
    assert table.loc['violin', 'paired']
    assert not table.loc['harp', 'paired'] and table.loc['harp', 'reason'] == 'no General MIDI sound'
