"""Paper-scale embedders (crossmodal.embedders.paper): missing-weights errors, and every architecture built with
random weights offline — shapes, dtypes, pre-/post-processing, and the weight-loading code paths on files written
here in the published formats. Nothing is downloaded."""
import importlib.util, os, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np
import pytest
from PIL import Image

from crossmodal.embedders.paper.clap import ByteTokenizer, CLAPAudio, CLAPText, CLAP_CHECKPOINTS, clap_windows, int16_roundtrip, load_clap_checkpoint, load_roberta_tokenizer
from crossmodal.embedders.paper.imagenet import ResNet50, VGG16
from crossmodal.embedders.paper.openl3 import OpenL3Audio, OpenL3Image, build_openl3, openl3_image_array, openl3_windows
from crossmodal.embedders.paper.vggish import VGGISH_LAYERS, VGGish, audioset_log_mel, build_vggish
from crossmodal.embedders.paper.weights import MissingWeightsError, PACKAGE_HINTS, import_keras, keras_predict, missing_package, require_package
from crossmodal.embedders.paper.yamnet import YAMNET_H5, YAMNet, build_yamnet, yamnet_pad
from crossmodal.embedders.base import get_embedder, available_embedders

def _have(*modules): return all(missing_package(m) is None for m in modules)

needs_keras = pytest.mark.skipif(not _have('keras', 'h5py'),
    reason='Keras 3 + h5py not installed (pip install -e ".[paper]" or pip install "keras>=3" h5py): the keras models cannot be built')
needs_clap = pytest.mark.skipif(not _have('laion_clap', 'torchlibrosa', 'ftfy', 'transformers', 'h5py'),
    reason='LAION-CLAP not installed (pip install --no-deps laion-clap==1.1.7 torchlibrosa ftfy transformers h5py)')

@pytest.fixture
def empty_weights(tmp_path, monkeypatch):
    "An empty weights root (and empty library caches), so every model's weights are missing."
    monkeypatch.setenv('CROSSMODAL_WEIGHTS', str(tmp_path / 'weights'))
    monkeypatch.setenv('KERAS_HOME', str(tmp_path / 'keras'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    return tmp_path / 'weights'

# ---------------------------------------------------------------- missing packages / weights: one clear error

@pytest.mark.parametrize('cls,filename,url_part', [
    (YAMNet, 'yamnet.h5', 'storage.googleapis.com/audioset/yamnet.h5'),
    (OpenL3Audio, 'openl3_audio_mel256_music.h5', 'marl/openl3/raw/models/openl3_audio_mel256_music-v0_4_0.h5.gz'),
    (OpenL3Image, 'openl3_image_mel256_music.h5', 'marl/openl3/raw/models/openl3_image_mel256_music-v0_4_0.h5.gz'),
    (ResNet50, 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5', 'keras-applications/resnet/'),
    (VGG16, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5', 'keras-applications/vgg16/'),
    (VGGish, 'vggish_model.ckpt', 'storage.googleapis.com/audioset/vggish_model.ckpt'),
])
def test_missing_weights_error_names_file_url_and_destination(empty_weights, cls, filename, url_part):
    with pytest.raises(MissingWeightsError) as err:
        cls()  # raised before any model is built: needs no keras
    msg = str(err.value)
    assert filename in msg and url_part in msg
    assert 'save it as' in msg and str(empty_weights) in msg
    why = cls.why_not()
    assert why is not None and (filename in why or 'needs the Python package' in why)

def test_vggish_error_offers_the_torch_files_too(empty_weights):
    with pytest.raises(MissingWeightsError) as err: VGGish()
    msg = str(err.value)
    for part in ('vggish_pca_params.npz', 'vggish-10086976.pth', 'vggish_pca_params-970ea276.pth', 'without TensorFlow'):
        assert part in msg

@pytest.mark.parametrize('cls,ckpt', [(CLAPAudio, 'music_audioset_epoch_15_esc_90.14.pt'), (CLAPText, 'music_audioset_epoch_15_esc_90.14.pt')])
def test_clap_missing_checkpoint(empty_weights, cls, ckpt):
    with pytest.raises(MissingWeightsError, match='huggingface.co/lukewys/laion_clap/resolve/main/' + ckpt.replace('.', r'\.')):
        cls(checkpoint='music')

def test_clap_general_checkpoint_and_unknown_name(empty_weights):
    with pytest.raises(MissingWeightsError, match='630k-audioset-best.pt'): CLAPAudio(checkpoint='general')
    with pytest.raises(ValueError, match="one of \\['music', 'music_speech', 'general'\\]"): CLAPAudio(checkpoint='nope')

def test_registry_says_why_and_refuses(empty_weights):
    table = available_embedders().set_index('name')
    for name, dim in [('openl3_audio', 6144), ('openl3_audio_512', 512), ('openl3_image', 8192), ('openl3_image_512', 512),
                      ('vggish', 128), ('yamnet', 1024), ('resnet50', 2048), ('vgg16', 512), ('clap_music_audio', 512),
                      ('clap_music_audio_prejoint', 1024), ('clap_music_text_prejoint', 768), ('clap_general_audio_prejoint', 768)]:
        assert table.loc[name, 'dim'] == dim, name
        assert not table.loc[name, 'available'] and table.loc[name, 'why_not'], name
    with pytest.raises(RuntimeError, match="yamnet.h5|needs the Python package 'keras'"): get_embedder('yamnet')

def test_weights_folder_from_environment(empty_weights):
    (empty_weights / 'yamnet').mkdir(parents=True)
    (empty_weights / 'yamnet' / 'yamnet.h5').write_bytes(b'not really')
    assert YAMNET_H5.find() == empty_weights / 'yamnet' / 'yamnet.h5'
    assert YAMNet.why_not() in (None, missing_package('keras'), missing_package('h5py'))

def test_missing_package_message():
    with pytest.raises(ModuleNotFoundError, match="needs the Python package 'h5py_nope'"):
        require_package('h5py_nope', 'x')
    for module in ('keras', 'h5py', 'tensorflow', 'torchlibrosa', 'ftfy', 'transformers'):
        assert 'pip install -e ".[paper]"' in PACKAGE_HINTS[module]
    assert '--no-deps laion-clap==1.1.7' in PACKAGE_HINTS['laion_clap']

def test_roberta_tokenizer_missing_and_wrong_size(tmp_path):
    with pytest.raises(MissingWeightsError, match='roberta-base/resolve/main/vocab.json'):
        load_roberta_tokenizer(tmp_path)
    if not _have('transformers'): pytest.skip('transformers not installed')
    import json
    (tmp_path / 'vocab.json').write_text(json.dumps({'<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3}))
    (tmp_path / 'merges.txt').write_text('#version: 0.2\n')
    with pytest.raises(ValueError, match="not roberta-base's 50265"): load_roberta_tokenizer(tmp_path)

# ---------------------------------------------------------------- pre-processing (NumPy only)

def test_audioset_frontend_counts():
    assert audioset_log_mel(np.zeros(16000, np.float32), 0.01).shape == (98, 64)
    assert np.allclose(audioset_log_mel(np.zeros(16000, np.float32), 0.01), np.log(0.01))  # silence: log(offset)
    assert len(yamnet_pad(np.zeros(15600))) == 15600 and len(yamnet_pad(np.zeros(15601))) == 15600 + 7680

def test_openl3_windows_match_openl3_count():
    for n in (100, 48000, 48001, 100000, 144000):
        centred = n + 24000
        expected = 1 if centred <= 48000 else 1 + int(np.ceil((centred - 48000) / 4800))  # openl3's _get_num_windows
        assert openl3_windows(np.zeros(n, np.float32)).shape == (expected, 48000), n

def test_clap_int16_roundtrip_and_repeatpad():
    x = np.random.default_rng(0).uniform(-1.5, 1.5, 1000).astype(np.float32)
    q = int16_roundtrip(x)
    assert q.dtype == np.float32 and np.abs(q).max() <= 1.0
    assert np.allclose(q * 32767, np.round(q * 32767)) and np.abs(q - np.clip(x, -1, 1)).max() < 1 / 32767 + 1e-7
    w = clap_windows(np.arange(1, 130001, dtype=np.float32))  # 130,000 samples: 3 repeats, then zeros
    assert w.shape == (1, 480000) and w[0, 390000 - 1] == 130000 and not w[0, 390000:].any()

# ---------------------------------------------------------------- keras models, random weights

@pytest.fixture(scope='module')
def keras_mod():
    if not _have('keras', 'h5py'): pytest.skip('keras not installed')
    return import_keras()

def _clip(seconds=1.0, sr=22050, stereo=False):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((2, int(seconds * sr)) if stereo else int(seconds * sr))).astype(np.float32)
    return (x, sr)

@needs_keras
@pytest.mark.parametrize('cls,dim', [(VGGish, 128), (YAMNet, 1024)])
def test_audioset_models_random(keras_mod, cls, dim):
    embedder = cls(weights='random')
    emb = embedder.embed([_clip(), _clip(0.3), _clip(stereo=True, sr=44100)])  # resampled, short (padded), stereo
    assert emb.shape == (3, dim) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert embedder.params()['weights'] == 'random'

@needs_keras
def test_vggish_postprocess_range_and_raw(keras_mod):
    quantised = VGGish(weights='random').embed([_clip(2.0)])
    assert quantised.min() >= 0 and quantised.max() <= 255
    raw = VGGish(weights='random', postprocess=False)
    assert raw.params()['postprocess'] is False and raw.embed([_clip(2.0)]).shape == (1, 128)

@needs_keras
def test_vggish_torch_weights_match_a_torch_forward(keras_mod, tmp_path):
    "torchvggish's layout → Keras: the Keras VGGish fed converted weights equals a plain PyTorch forward of the same weights."
    import torch, torch.nn.functional as F
    g = torch.Generator().manual_seed(0)
    shapes = {'features.0': (64, 1), 'features.3': (128, 64), 'features.6': (256, 128), 'features.8': (256, 256),
              'features.11': (512, 256), 'features.13': (512, 512)}
    state = {}
    for k, (o, i) in shapes.items():
        state[f'{k}.weight'] = torch.randn(o, i, 3, 3, generator=g) * (2 / (9 * i)) ** 0.5
        state[f'{k}.bias'] = torch.randn(o, generator=g) * 0.01
    for k, (o, i) in {'embeddings.0': (4096, 12288), 'embeddings.2': (4096, 4096), 'embeddings.4': (128, 4096)}.items():
        state[f'{k}.weight'] = torch.randn(o, i, generator=g) * (2 / i) ** 0.5
        state[f'{k}.bias'] = torch.randn(o, generator=g) * 0.01
    torch.save(state, tmp_path / 'vggish-10086976.pth')
    pca = {'pca_eigen_vectors': torch.eye(128), 'pca_means': torch.zeros(128, 1)}
    torch.save(pca, tmp_path / 'vggish_pca_params-970ea276.pth')
    embedder = VGGish(weights=tmp_path, postprocess=False)
    assert [p.name for p in embedder.weight_paths] == ['vggish-10086976.pth', 'vggish_pca_params-970ea276.pth']
    patches = np.random.default_rng(0).standard_normal((2, 96, 64)).astype(np.float32)
    ours = keras_predict(embedder.model, patches)
    x = torch.from_numpy(patches)[:, None]
    for k in shapes:
        x = F.relu(F.conv2d(x, state[f'{k}.weight'], state[f'{k}.bias'], padding=1))
        if k in ('features.0', 'features.3', 'features.8', 'features.13'): x = F.max_pool2d(x, 2)
    x = x.permute(0, 2, 3, 1).reshape(len(x), -1)  # TF's (height, width, channel) flattening, as torchvggish does
    x = F.relu(F.linear(x, state['embeddings.0.weight'], state['embeddings.0.bias']))
    x = F.relu(F.linear(x, state['embeddings.2.weight'], state['embeddings.2.bias']))
    x = F.linear(x, state['embeddings.4.weight'], state['embeddings.4.bias'])
    np.testing.assert_allclose(ours, x.numpy(), rtol=1e-3, atol=1e-3 * np.abs(x.numpy()).max())

@needs_keras
@pytest.mark.skipif(not _have('tensorflow'), reason='TensorFlow not installed: only the original vggish_model.ckpt needs it (pip install "tensorflow-cpu==2.21.*")')
def test_vggish_reads_the_original_tf1_checkpoint(keras_mod, tmp_path):
    "A TF-1 (V1-format) checkpoint with VGGish's variable names and the PCA .npz load into the Keras VGGish."
    import tensorflow as tf
    v1 = tf.compat.v1
    rng = np.random.default_rng(0)
    reference = {l.name: [rng.standard_normal(w.shape).astype(np.float32) for w in l.get_weights()]
                 for l in build_vggish().layers if l.name in VGGISH_LAYERS}
    scopes = {'conv3_1': 'conv3/conv3_1', 'conv3_2': 'conv3/conv3_2', 'conv4_1': 'conv4/conv4_1', 'conv4_2': 'conv4/conv4_2',
              'fc1_1': 'fc1/fc1_1', 'fc1_2': 'fc1/fc1_2'}
    with tf.Graph().as_default():
        for name, (kernel, bias) in reference.items():
            v1.get_variable(f'vggish/{scopes.get(name, name)}/weights', initializer=kernel)
            v1.get_variable(f'vggish/{scopes.get(name, name)}/biases', initializer=bias)
        saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            saver.save(sess, str(tmp_path / 'vggish_model.ckpt'), write_meta_graph=False)
    pca_matrix = np.linalg.qr(rng.standard_normal((128, 128)))[0].astype(np.float32)
    np.savez(tmp_path / 'vggish_pca_params.npz', pca_eigen_vectors=pca_matrix, pca_means=np.ones((128, 1), np.float32))
    embedder = VGGish(weights=tmp_path)
    assert embedder.weight_paths[0].name == 'vggish_model.ckpt'
    for name, (kernel, bias) in reference.items():
        got = embedder.model.get_layer(name).get_weights()
        np.testing.assert_array_equal(got[0], kernel); np.testing.assert_array_equal(got[1], bias)
    np.testing.assert_array_equal(embedder.pca_matrix, pca_matrix); assert embedder.pca_means.shape == (128,)

def _write_legacy_h5(model, path):
    "Write `model`'s weights in the Keras-2 HDF5 layout (what openl3, yamnet.h5 and keras.applications ship)."
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, 'w') as f: legacy_h5_format.save_weights_to_hdf5_group(f, model)

@needs_keras
def test_openl3_image_loads_h5_and_scales(keras_mod, tmp_path):
    source = build_openl3('image', 8192)
    trunk = keras_mod.Model(source.input, source.layers[-3].output)  # the network before the max-pool + flatten
    (tmp_path / 'openl3').mkdir()
    _write_legacy_h5(trunk, tmp_path / 'openl3' / 'openl3_image_mel256_music.h5')
    images = [Image.new('RGB', (224, 224), (255, 0, 0)), Image.new('L', (100, 60), 128)]
    loaded = OpenL3Image(weights=tmp_path / 'openl3')
    emb = loaded.embed(images)
    assert emb.shape == (2, 8192) and emb.dtype == np.float32
    prepared, _ = loaded.prepare(images)
    np.testing.assert_allclose(emb, keras_predict(source, openl3_image_array(prepared)), rtol=1e-4, atol=1e-5)
    small = OpenL3Image(weights=tmp_path / 'openl3', embedding_size=512)
    assert small.name == 'openl3_image_512' and small.embed(images[:1]).shape == (1, 512)
    arr = openl3_image_array(prepared)
    assert arr.min() >= -1 and arr.max() <= 1

@needs_keras
@pytest.mark.parametrize('size', [6144, 512])
def test_openl3_audio_random(keras_mod, size):
    embedder = OpenL3Audio(weights='random', embedding_size=size, hop_seconds=0.5)
    emb = embedder.embed([_clip(0.5), _clip(1.0, sr=48000)])
    assert emb.shape == (2, size) and emb.dtype == np.float32 and embedder.dim == size
    assert embedder.params()['hop_seconds'] == 0.5

@needs_keras
def test_yamnet_loads_h5(keras_mod, tmp_path):
    source = build_yamnet()
    _write_legacy_h5(source, tmp_path / 'yamnet.h5')
    loaded = YAMNet(weights=tmp_path / 'yamnet.h5')
    patches = np.random.default_rng(0).standard_normal((3, 96, 64)).astype(np.float32)
    np.testing.assert_allclose(keras_predict(loaded.embedding_model, patches),
                               np.asarray(source.predict_on_batch(patches)[0]), rtol=1e-4, atol=1e-5)
    assert loaded.params()['weights'] != 'random'

@needs_keras
@pytest.mark.parametrize('cls,dim', [(ResNet50, 2048), (VGG16, 512)])
def test_keras_applications_random(keras_mod, cls, dim):
    embedder = cls(weights='random')
    images = [Image.new('RGBA', (50, 80), (0, 0, 255, 0)), Image.new('RGB', (224, 224), (10, 20, 30))]
    emb = embedder.embed(images)
    assert emb.shape == (2, dim) and emb.dtype == np.float32
    x = embedder.preprocess([Image.new('RGB', (224, 224), (0, 0, 255))])
    np.testing.assert_allclose(x[0, 0, 0], [255 - 103.939, -116.779, -123.68], atol=1e-3)  # BGR order, Caffe means
    assert embedder.model.count_params() == {2048: 23587712, 512: 14714688}[dim]

# ---------------------------------------------------------------- LAION-CLAP, random weights (HTSAT-tiny: the faster build)

@pytest.fixture(scope='module')
def clap_audio():
    if not _have('laion_clap', 'torchlibrosa', 'ftfy', 'transformers', 'h5py'): pytest.skip('laion_clap not installed')
    return CLAPAudio(weights='random', checkpoint='general', device='cpu')

@needs_clap
def test_clap_import_leaves_no_fake_torchvision(clap_audio):
    tv = sys.modules.get('torchvision')
    assert tv is None or getattr(tv, '__file__', None) is not None  # the stand-in was removed after the import
    assert 'clap_module' in sys.modules

@needs_clap
def test_clap_audio_joint_and_prejoint(clap_audio):
    one_second = (0.1 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
    emb = clap_audio.embed([(one_second, 48000), (one_second[::3].copy(), 16000)])  # the second is resampled to 48 kHz
    assert emb.shape == (2, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # repeatpad: a 1-s clip is tiled 10 times, so the tiled clip itself gives the same vector
    tiled = clap_audio.embed([(np.tile(one_second, 10), 48000)])
    np.testing.assert_allclose(tiled[0], emb[0], atol=1e-5)
    pre = CLAPAudio(weights='random', checkpoint='general', space='prejoint', device='cpu')
    assert pre.model is clap_audio.model  # one model in memory
    assert pre.dim == 768 and pre.name == 'clap_general_audio_prejoint'
    assert pre.embed([(one_second, 48000)]).shape == (1, 768)

@needs_clap
def test_clap_text_joint_and_prejoint(clap_audio):
    text = CLAPText(weights='random', checkpoint='general', device='cpu')
    assert isinstance(text.tokenizer, ByteTokenizer) and text.params()['tokenizer'] == 'ByteTokenizer'
    emb = text.embed(['the sound of a violin', 'a trumpet'])
    assert emb.shape == (2, 512) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    pre = CLAPText(weights='random', checkpoint='general', space='prejoint', device='cpu').embed(['x' * 500])  # truncated to 77
    assert pre.shape == (1, 768) and pre.dtype == np.float32

@needs_clap
def test_clap_checkpoint_loading(clap_audio, tmp_path):
    import torch
    model = clap_audio.model
    state = {'module.' + k: v.clone() for k, v in model.state_dict().items()}
    state['module.text_branch.embeddings.position_ids'] = torch.arange(514)[None]  # saved by transformers < 4.31
    torch.save({'epoch': 15, 'state_dict': state}, tmp_path / 'ok.pt')
    load_clap_checkpoint(model, tmp_path / 'ok.pt', 'HTSAT-tiny')  # loads cleanly
    del state['module.audio_projection.0.weight']
    torch.save({'state_dict': state}, tmp_path / 'bad.pt')
    with pytest.raises(ValueError, match="Music checkpoints need 'HTSAT-base'"):
        load_clap_checkpoint(model, tmp_path / 'bad.pt', 'HTSAT-tiny')

@needs_clap
def test_clap_music_config_is_htsat_base():
    "The music checkpoints' encoder: HTSAT-base, whose pooled embedding is 1024-d (HTSAT-tiny: 768)."
    import json
    folder = Path(importlib.util.find_spec('laion_clap').submodule_search_locations[0]) / 'clap_module' / 'model_configs'
    assert json.loads((folder / 'HTSAT-base.json').read_text())['embed_dim'] == CLAP_CHECKPOINTS['music']['audio_dim'] == 1024
    assert json.loads((folder / 'HTSAT-tiny.json').read_text())['embed_dim'] == CLAP_CHECKPOINTS['general']['audio_dim'] == 768
    assert CLAP_CHECKPOINTS['music']['amodel'] == 'HTSAT-base'
