"End-to-end checks of the studio audio renderer (crossmodal.data.studio.audio) on small renders."
import hashlib, json, os
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
os.environ.setdefault('CROSSMODAL_QUIET', '1')

import numpy as np
import pandas as pd
import pytest
import soundfile

from crossmodal.core import get_profile, file_sha256, cache_use, RUN_DIR_VARIABLE
import crossmodal.data.studio.audio as audio
from crossmodal.data.studio.instruments import CYMBAL_KEYS
from crossmodal.data.manifest import read_manifest
from crossmodal.data.studio.audio import render_studio_audio, tinysol_metadata, AUDIO_COLUMNS as MANIFEST_COLUMNS
from crossmodal.data.studio.instruments import (plan_audio, find_soundfont, instrument_spec, STUDIO_CLASSES, TINYSOL_INSTRUMENTS)
from crossmodal.data.manifest import load_audio, damaged_files

SMALL = get_profile('tiny', pitches_per_instrument=3, phrases_per_instrument=1, max_items=None)
SOME = ['violin', 'drums', 'cymbals', 'voice', 'Cb', 'Fl']


def digests(manifest):
    root = Path(manifest.attrs['root'])
    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in manifest.path}


@pytest.fixture(scope='module')
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp('studio')
    return render_studio_audio(SMALL, 0, SOME, root=root, n_jobs=1, verbose=False)


def test_manifest_shape(small):
    assert list(small.columns) == MANIFEST_COLUMNS
    assert small.id.is_unique and small.path.is_unique
    assert set(small.modality) == {'audio'}
    assert set(small.kind) == {'note', 'phrase'}
    assert set(small.dataset) == {'studio', 'tinysol-like'}
    assert set(small.labels.str[0]) == {'violin', 'drums', 'cymbals', 'voice', 'Contrabass', 'Flute'}
    assert all(i.startswith('/m/') for ids in small.ontology_ids for i in ids)
    assert set(small[small.labels.str[0] == 'violin'].ontology_ids.str.join(';')) == {'/m/07y_7'}
    assert set(small[small.labels.str[0] == 'voice'].program) == {52, 53}
    drums = small[small.instrument.isin(['drums', 'cymbals'])]
    assert set(drums.channel) == {9} and set(drums.bank) == {128}
    assert set(drums[drums.instrument == 'cymbals'].pitch) <= set(CYMBAL_KEYS)
    assert not any(Path(p).is_absolute() for p in small.path)


def test_every_clip_loads_at_profile_rate(small):
    root = Path(small.attrs['root'])
    for p in small.path:
        y, sr = load_audio(root / p)
        assert sr == SMALL.audio_sample_rate and len(y) == int(SMALL.clip_seconds * sr)
        assert y.dtype == np.float32 and np.abs(y).max() > audio.SILENCE_PEAK


def test_splits_are_grouped(small):
    assert set(small[small.source == 'TimGM6mb'].split) == {'test'}
    assert set(small[small.source != 'TimGM6mb'].split) <= {'train', 'valid'}
    within = small[small.split != 'test']
    assert within.groupby('group').split.nunique().max() == 1  # a pitch never straddles train and valid
    assert {'train', 'valid'} <= set(within.split)


def test_silent_notes_are_skipped_and_counted(small):
    summary = small.attrs['summary']
    assert summary['silent_skipped'] >= 1  # FluidR3's contrabass has no sample near the top of its range
    assert all(i.startswith('tinysol-like/Cb-') and 'FluidR3_GM' in i for i in summary['skipped_ids'])
    assert summary['planned'] == summary['rendered'] + summary['silent_skipped'] + summary['missing_preset_skipped']
    assert summary['rendered'] == len(small)


def test_deterministic_across_processes_and_cached(small, tmp_path):
    again = render_studio_audio(SMALL, 0, SOME, root=tmp_path, n_jobs=2, verbose=False)
    pd.testing.assert_frame_equal(again, small)
    assert digests(again) == digests(small)
    cached = render_studio_audio(SMALL, 0, SOME, root=tmp_path, verbose=False)
    assert cached.attrs['summary']['cached']
    pd.testing.assert_frame_equal(cached, small)
    other_seed = render_studio_audio(SMALL, 1, ['violin'], root=tmp_path, verbose=False)
    assert set(other_seed.pitch) != set(small[small.instrument == 'violin'].pitch)  # another seed, other pitches


def test_interrupted_render_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    def failing(*args, **kwargs):
        calls.append(1)
        raise KeyboardInterrupt
    monkeypatch.setattr(audio, '_render_soundfont', failing)
    with pytest.raises(KeyboardInterrupt):
        render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    assert calls and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    manifest = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    assert not manifest.attrs['summary']['cached'] and len(manifest) > 0


def test_unfinished_folder_is_not_read(tmp_path):
    (tmp_path / 'x').mkdir()
    with pytest.raises(FileNotFoundError, match='not a finished render'):
        read_manifest(tmp_path / 'x')


def test_missing_soundfont_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv('CROSSMODAL_SOUNDFONT_DIRS', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='apt-get install fluid-soundfont-gm'):
        find_soundfont('FluidR3_GM')
    with pytest.raises(FileNotFoundError, match='musescore-general-soundfont'):
        render_studio_audio(get_profile('tiny', soundfonts=('MuseScore_General',)), 0, ['violin'], root=tmp_path)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match='violin, voice, drums'):
        instrument_spec('theremin')
    with pytest.raises(ValueError, match='no ukulele program'):
        plan_audio('tiny', 0, ['ukulele'])
    with pytest.raises(ValueError, match='known: FluidR3_GM'):
        plan_audio(get_profile('tiny', soundfonts=('Nope',)), 0, ['violin'])


def test_resampling(small):
    y, sr = load_audio(Path(small.attrs['root']) / small.path[0], sr=22050)
    assert sr == 22050 and len(y) == int(SMALL.clip_seconds * 22050) and y.dtype == np.float32


def test_tinysol_metadata(small):
    meta = tinysol_metadata(small)
    assert list(meta.columns[:5]) == ['Path', 'Fold', 'Family', 'Instrument (abbr.)', 'Instrument (in full)']
    assert set(meta['Instrument (abbr.)']) == {'Cb', 'Fl'}
    assert set(meta['Dynamics']) == {'mf'} and meta['Fold'].between(0, 4).all()
    row = meta.iloc[0]
    assert row.Path.startswith(f"Strings/Contrabass/ordinario/Cb-ord-{row.Pitch}-mf")


def test_full_plans_sizes():
    studio = plan_audio('studio', 0)
    P = get_profile('studio')
    from crossmodal.data.studio.instruments import instrument_spec
    specs = [instrument_spec(n)[2] for n in [*STUDIO_CLASSES, *TINYSOL_INSTRUMENTS]]
    pitches = [min(P.pitches_per_instrument, len(s['keys']) if s['keys'] is not None else s['high'] - s['low'] + 1) for s in specs]
    assert len(studio) == sum(p * len(P.velocities) + P.phrases_per_instrument for p in pitches) * len(P.soundfonts)
    assert max(pitches) == 24 and min(pitches) < 24   # every instrument that has 24 pitches in its range gets them
    assert len(plan_audio('tiny', 0)) <= get_profile('tiny').max_items


def test_stale_temporary_folders_are_removed(tmp_path):
    folder = audio.audio_folder(SMALL, 0, ['violin'], root=tmp_path)
    stale = folder.with_name(f'.{folder.name}.part-999999999')
    stale.mkdir(parents=True)
    (stale / 'half.wav').write_bytes(b'')
    manifest = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    assert not stale.exists() and Path(manifest.attrs['root']) == folder


def test_manifest_records_each_clips_checksum(small):
    assert small.sha256.tolist() == list(digests(small).values())
    assert damaged_files(small.attrs['root'], small) == []


def test_read_manifest_reports_damaged_clips(tmp_path):
    m = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    root = Path(m.attrs['root'])
    (root / m.path[2]).write_bytes((root / m.path[2]).read_bytes()[:500])
    with pytest.raises(ValueError, match=rf"1 of {len(m)} rendered clips .* is missing or damaged \({Path(m.path[2]).name}\)"):
        read_manifest(root)
    assert len(read_manifest(root, verify=False)) == len(m)  # unverified, on request only


def test_pre_checksum_render_is_rendered_again_with_the_same_bytes(tmp_path, capsys):
    m = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    root, before = Path(m.attrs['root']), digests(m)
    m.drop(columns='sha256').to_csv(root / 'manifest.csv', index=False)  # as the renderer wrote it before checksums
    capsys.readouterr()
    again = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    assert 'rendered before clips had checksums' in capsys.readouterr().out
    assert list(again.columns) == MANIFEST_COLUMNS and digests(again) == before
    assert Path(again.attrs['root']) == root and damaged_files(root, again) == []


def test_rerendered_clip_that_differs_redoes_the_whole_render(tmp_path, capsys):
    m = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    root, before = Path(m.attrs['root']), digests(m)
    lying = m.copy(); lying.loc[1, 'sha256'] = '0' * 64  # a recorded checksum no re-render can meet
    lying.to_csv(root / 'manifest.csv', index=False)
    capsys.readouterr()
    again = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    out = capsys.readouterr().out
    assert '1 of' in out and 'differ from their recorded checksums' in out and 'rendering all of it again' in out
    assert not again.attrs['summary']['cached'] and digests(again) == before
    assert damaged_files(root, again) == [] and again.sha256.tolist() == m.sha256.tolist()


def test_interrupted_repair_is_repaired_by_the_next_call(tmp_path, monkeypatch):
    m = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)
    root, before = Path(m.attrs['root']), digests(m)
    (root / m.path[0]).unlink()
    def failing(*args, **kwargs): raise KeyboardInterrupt
    monkeypatch.setattr(audio, '_render_soundfont', failing)
    with pytest.raises(KeyboardInterrupt):
        render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, verbose=False)
    monkeypatch.undo()
    assert not list(tmp_path.glob('.*'))  # no temporary folder left
    assert damaged_files(root, m) == [m.path[0]]  # still damaged, still found
    again = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, verbose=False)
    assert digests(again) == before and again.attrs['summary']['rerendered'] == [m.id[0]]


def test_cache_use_counts_clips(tmp_path, monkeypatch):
    run = tmp_path / 'run'; run.mkdir()
    monkeypatch.setenv(RUN_DIR_VARIABLE, str(run))
    m = render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, n_jobs=1, verbose=False)   # cold: every clip a miss
    render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, verbose=False)                 # warm: every clip a hit
    (Path(m.attrs['root']) / m.path[0]).unlink()
    render_studio_audio(SMALL, 0, ['violin'], root=tmp_path, verbose=False)                 # one clip re-rendered
    lines = [json.loads(l) for l in (run / 'cache_use.jsonl').read_text().splitlines()]
    n = len(m)
    assert [(l['hits'], l['misses']) for l in lines] == [(0, n), (n, 0), (n - 1, 1)]
    assert set(l['stage'] for l in lines) == {'render studio audio'}
    assert cache_use(run).state.tolist() == ['partly warm']
