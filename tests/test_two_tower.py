"""The two-tower protocol on LAION-CLAP with random weights (crossmodal.spaces.twotower.ClapTwoTower): shapes, the
joint output as the projection of the pre-joint output of the same pass, agreement with the CLAP branches that
compute the joint space their own way, and determinism. Nothing is downloaded; HTSAT-tiny is the faster build."""
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from crossmodal.embedders.paper.weights import missing_package

needs_clap = pytest.mark.skipif(any(missing_package(m) for m in ('laion_clap', 'torchlibrosa', 'ftfy', 'transformers', 'h5py')),
    reason='LAION-CLAP not installed (pip install --no-deps laion-clap==1.1.7 torchlibrosa ftfy transformers h5py)')


@pytest.fixture(scope='module')
def clap_system():
    from crossmodal.spaces.twotower import ClapTwoTower
    import torch
    torch.manual_seed(0)
    return ClapTwoTower('general', weights='random')


@pytest.fixture
def two_clips(tmp_path):
    "A manifest of two short clips (a tone and a quieter, higher one), written as WAV files."
    t = np.arange(16000) / 16000
    for name, wave in (('a', 0.2 * np.sin(2 * np.pi * 440 * t)), ('b', 0.05 * np.sin(2 * np.pi * 880 * t))):
        sf.write(tmp_path / f'{name}.wav', wave.astype(np.float32), 16000)
    clips = pd.DataFrame({'id': ['a', 'b'], 'path': ['a.wav', 'b.wav'], 'modality': 'audio'})
    clips.attrs['root'] = str(tmp_path)
    return clips


@needs_clap
def test_clap_two_tower_spaces_and_shapes(clap_system, two_clips):
    audio = clap_system.encode_audio(two_clips)
    assert audio['pre_joint'].shape == (2, 768) and audio['joint'].shape == (2, 512)      # HTSAT-tiny: 768-d before the projection
    assert audio['joint'].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(audio['joint'], axis=1), 1.0, atol=1e-5)
    text = clap_system.encode_text(['a violin', 'a trumpet in c'])
    assert text['pre_joint'].shape == (2, 768) and text['joint'].shape == (2, 512)
    np.testing.assert_allclose(clap_system.embed_text(['a violin'], 'pre_joint')[0], text['pre_joint'][0], atol=1e-5)   # alone = in a batch


@needs_clap
def test_clap_joint_is_the_projection_of_the_same_pass(clap_system, two_clips):
    "The joint vectors agree with the CLAP branches that project inside their own forward pass."
    from crossmodal.embedders.cache import embed_manifest
    from crossmodal.embedders.paper.clap import CLAPAudio, CLAPText
    joint_audio = CLAPAudio(weights='random', checkpoint='general', space='joint', device='cpu')
    assert joint_audio.model is clap_system.audio_branch.model                              # one model in memory
    np.testing.assert_allclose(clap_system.embed_audio(two_clips), embed_manifest(joint_audio, two_clips, progress=False, cache=False), atol=1e-5)
    joint_text = CLAPText(weights='random', checkpoint='general', space='joint', device='cpu')
    prompts = ['A violoncello track', 'Solo musical instrument sound of oboe']
    np.testing.assert_allclose(clap_system.embed_text(prompts), joint_text.embed(prompts), atol=1e-5)


@needs_clap
def test_clap_two_tower_is_deterministic(clap_system, two_clips):
    np.testing.assert_array_equal(clap_system.embed_audio(two_clips), clap_system.embed_audio(two_clips))
    np.testing.assert_array_equal(clap_system.embed_text(['a flute']), clap_system.embed_text(['a flute']))
    with pytest.raises(ValueError, match="prompt 0 is ''"): clap_system.embed_text([''])


@needs_clap
def test_missing_clap_checkpoint_is_one_error_naming_the_file(tmp_path, monkeypatch):
    "The paper profile's second checkpoint: without its weights, one error naming the file and where it belongs."
    from crossmodal.embedders.paper.weights import MissingWeightsError
    from crossmodal.spaces.twotower import ClapTwoTower
    monkeypatch.setenv('CROSSMODAL_HOME', str(tmp_path))
    monkeypatch.delenv('CROSSMODAL_WEIGHTS', raising=False)
    with pytest.raises(MissingWeightsError) as error:
        ClapTwoTower('music_speech')
    message = str(error.value)
    assert 'clap_music_speech_audio' in message and 'music_speech_audioset_epoch_15_esc_89.98.pt' in message
    assert str(tmp_path / 'weights' / 'clap') in message


@needs_clap
def test_clap_text_truncation_reports_what_the_77_token_window_drops(clap_system):
    "The random-weights byte tokenizer: one token per UTF-8 byte plus <s> and </s>; a long prompt loses its tail."
    short, long = 'A violin track', 'x' * 100
    (n_short, cut_short), (n_long, cut_long) = clap_system.text_truncation([short, long])
    assert (n_short, cut_short) == (len(short) + 2, '')
    assert n_long == 102 and cut_long == 'x' * 25          # 75 bytes fit between <s> and </s>
