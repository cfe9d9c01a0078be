"""The `paper` profile's music world (`crossmodal.data.real.music_sets`) on the loaders' fixtures: the tables' columns,
the split proportions, playlists that point at tracks, GTZAN's split sizes, unreadable audio skipped and counted, the
spectrogram cache reused and never marked done after an interrupted build, and missing datasets' download hints."""
import json, re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossmodal.data.fixtures import JAMENDO_FIXTURE_TRACKS, write_gtzan_fixture, write_jamendo_fixture, write_melon_fixture
from crossmodal.data.real import music_sets
from crossmodal.data.real.base import MissingDataError
from crossmodal.data.real.gtzan import GTZAN
from crossmodal.data.real.melon import Melon
from crossmodal.data.studio.world_audio import GTZAN_COLUMNS, JAMENDO_COLUMNS, TRACK_COLUMNS, MusicWorld
from crossmodal.data.real.music_sets import (GTZAN_CENTRE_SECONDS, gtzan_table, melon_tracks, paper_music_world,
                                             spectrogram_cache_folder)

STUDIO_ONLY = {'soundfont'}   # how a rendered track was played
CONTRACT = {   # the studio world's columns, less its latents (which real data does not have)
    'tracks': ['id', 'split', 'mel_path', 'frames', 'genres'],
    'playlists': ['id', 'tracks'],
    'genre_table': ['code', 'name', 'parent_code', 'level'],
    'gtzan': [c for c in GTZAN_COLUMNS if c not in STUDIO_ONLY],
    'jamendo': [c for c in JAMENDO_COLUMNS if c not in STUDIO_ONLY],
}
TSV_HEADER = 'TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS'


def add_jamendo_subsets(root):
    "The fixture writes the mood/theme subset only: add genre and instrument subsets (split-0) in the same TSV form."
    line = lambda t, tags: '\t'.join([*t[:4], str(t[4]), *tags])
    plan = {'autotagging_genre': ({0: 'train', 1: 'validation', 2: 'test'}, ['genre---rock', 'genre---pop']),
            'autotagging_instrument': ({0: 'test', 1: 'train', 3: 'validation'}, ['instrument---piano'])}
    for subset, (split_of, tags) in plan.items():
        (root / 'data' / f'{subset}.tsv').write_text(
            '\n'.join([TSV_HEADER] + [line(JAMENDO_FIXTURE_TRACKS[k], tags) for k in split_of]) + '\n')
        for s in ('train', 'validation', 'test'):
            rows = [line(JAMENDO_FIXTURE_TRACKS[k], tags) for k, v in split_of.items() if v == s]
            (root / 'data' / 'splits' / 'split-0' / f'{subset}-{s}.tsv').write_text('\n'.join([TSV_HEADER] + rows) + '\n')
    return root


@pytest.fixture
def roots(tmp_path):
    return dict(melon_root=write_melon_fixture(tmp_path / 'melon'), gtzan_root=write_gtzan_fixture(tmp_path / 'gtzan'),
                jamendo_root=add_jamendo_subsets(write_jamendo_fixture(tmp_path / 'jamendo')),
                cache_root=tmp_path / 'cache')


def write_big_melon(root, n=400, unlabelled=40, frames=8, seed=0):
    "A Melon release of `n` songs with random big/detailed genres (`unlabelled` of them without any), written here."
    rng = np.random.default_rng(seed)
    big = ['GN0100', 'GN0200', 'GN1500']
    meta = []
    for i in range(n):
        gn = [] if i < unlabelled else sorted(set(rng.choice(big, rng.integers(1, 3)).tolist()))
        dtl = [g[:-2] + f'{rng.integers(1, 4):02d}' for g in gn]
        meta.append(dict(id=i, song_gn_gnr_basket=gn, song_gn_dtl_gnr_basket=dtl, song_name=f'song {i}'))
        path = root / 'arena_mel' / str(i // 1000) / f'{i}.npy'
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.zeros((48, frames + i % 5), np.float16))
    names = {c: c for g in big for c in [g] + [g[:-2] + f'{k:02d}' for k in range(1, 4)]}
    (root / 'song_meta.json').write_text(json.dumps(meta))
    (root / 'genre_gn_all.json').write_text(json.dumps(names))
    pls = [dict(id=k, songs=rng.choice(n, 5, replace=False).tolist(), tags=[], plylst_title='') for k in range(30)]
    for name in ('train', 'val', 'test'): (root / f'{name}.json').write_text(json.dumps(pls[:10] if name == 'train' else []))
    return root


def test_the_world_has_the_contract_columns(roots):
    world = paper_music_world(**roots, allow_missing=True)
    assert isinstance(world, MusicWorld)
    assert set(CONTRACT['tracks']) <= set(TRACK_COLUMNS)
    assert list(world.gtzan.columns) == CONTRACT['gtzan'] and list(world.jamendo.columns) == CONTRACT['jamendo']
    for name, columns in CONTRACT.items():
        table = getattr(world, name)
        assert set(columns) <= set(table.columns), f'{name} lacks {sorted(set(columns) - set(table.columns))}'
        assert len(table), f'{name} is empty'
    for name in ('tracks', 'gtzan', 'jamendo'):
        table = getattr(world, name)
        assert all(Path(p).is_absolute() and Path(p).exists() for p in table['mel_path'])
        for path, frames in zip(table['mel_path'], table['frames']):   # mel x time, as Melon stores them
            assert np.load(path, mmap_mode='r').shape == (48, frames)
    assert set(world.tracks['split']) <= {'train', 'validation', 'test'}
    assert set(world.gtzan['split']) == {'train', 'test'}
    for cat in ('genre', 'mood', 'instrument'):
        assert set(world.jamendo[f'split_{cat}'].dropna()) <= {'train', 'validation', 'test'}
    assert world.tracks.set_index('id').loc['1000', 'genres'] == ['GN0100', 'GN1500', 'GN0101', 'GN1501']
    assert Path(world.folder) == roots['cache_root']


def test_playlists_point_at_tracks_of_the_world(roots, capsys):
    world = paper_music_world(**roots, allow_missing=True)
    ids = set(world.tracks['id'])
    assert all(t in ids for tracks in world.playlists['tracks'] for t in tracks)
    assert world.playlists.set_index('id').loc['2', 'tracks'] == ['1']                    # song 2500 has no mel
    assert '1 playlist entries are songs without a mel-spectrogram' in capsys.readouterr().out


@pytest.mark.parametrize('split, shares', [('paper', {'train': 0.80, 'validation': 0.10, 'test': 0.10}),
                                           ('code', {'train': 0.81, 'validation': 0.09, 'test': 0.10})])
def test_melon_split_proportions(tmp_path, capsys, split, shares):
    melon = Melon(write_big_melon(tmp_path / 'melon'))
    tracks = melon_tracks(melon, seed=0, split=split)
    assert len(tracks) == 400 and tracks['frames'].tolist() == [8 + i % 5 for i in range(400)]
    got = tracks['split'].value_counts(normalize=True)
    for name, share in shares.items(): assert abs(got[name] - share) < 0.02, (name, got.to_dict())
    unlabelled = tracks[tracks['genres'].map(len) == 0]
    assert len(unlabelled) == 40 and set(unlabelled['split']) == {'train', 'validation', 'test'}
    assert '40 of 400 songs have no genre' in capsys.readouterr().out
    assert melon_tracks(melon, seed=0, split=split)['split'].tolist() == tracks['split'].tolist()   # seeded
    assert melon_tracks(melon, seed=1, split=split)['split'].tolist() != tracks['split'].tolist()


def test_gtzan_split_sizes_from_the_fixture(tmp_path):
    gtzan = GTZAN(write_gtzan_fixture(tmp_path / 'gtzan', per_split=2), allow_missing=True)
    table = gtzan_table(gtzan, tmp_path / 'cache')
    assert table['split'].value_counts().to_dict() == {'train': 20, 'test': 20}       # 2 per genre; validation left out
    assert table.groupby('genre').size().eq(4).all()


def test_a_corrupt_audio_file_is_skipped_and_counted(tmp_path, capsys):
    root = write_gtzan_fixture(tmp_path / 'gtzan')
    bad = sorted((root / 'genres' / 'rock').glob('*.au'))[0]
    bad.write_bytes(b'.snd garbage')
    table = gtzan_table(GTZAN(root, allow_missing=True), tmp_path / 'cache')
    out = capsys.readouterr().out
    assert bad.stem not in set(table['id']) and len(table) == 19
    assert '1 unreadable file(s) skipped' in out and bad.name in out
    gtzan_table(GTZAN(root, allow_missing=True), tmp_path / 'cache')                  # from the cache: still reported
    assert f'1 unreadable file(s) were skipped when the cache was built: {bad.name}' in capsys.readouterr().out


def test_the_cache_is_reused_on_a_second_call(tmp_path, monkeypatch, capsys):
    gtzan = GTZAN(write_gtzan_fixture(tmp_path / 'gtzan'), allow_missing=True)
    first = gtzan_table(gtzan, tmp_path / 'cache')
    assert '20 log-mels computed, 0 reused' in capsys.readouterr().out
    folder = spectrogram_cache_folder(tmp_path / 'cache', 'gtzan', GTZAN_CENTRE_SECONDS)
    assert (folder / '.done').exists() and Path(first['mel_path'][0]).parent == folder
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob('*.npy')}
    def no_compute(*a, **k): raise AssertionError('recomputed a cached spectrogram')
    monkeypatch.setattr(music_sets, 'log_mel', no_compute)
    monkeypatch.setattr(music_sets, 'load_audio', no_compute)
    second = gtzan_table(gtzan, tmp_path / 'cache')
    pd.testing.assert_frame_equal(first, second)
    assert stamps == {p: p.stat().st_mtime_ns for p in folder.glob('*.npy')}
    assert 'computed' not in capsys.readouterr().out


def test_an_interrupted_build_leaves_no_done_marker_and_resumes(tmp_path, monkeypatch, capsys):
    gtzan = GTZAN(write_gtzan_fixture(tmp_path / 'gtzan'), allow_missing=True)
    real, calls = music_sets.log_mel, []
    def interrupted(audio, sample_rate=16000):
        calls.append(1)
        if len(calls) == 6: raise KeyboardInterrupt
        return real(audio, sample_rate=sample_rate)
    monkeypatch.setattr(music_sets, 'log_mel', interrupted)
    with pytest.raises(KeyboardInterrupt): gtzan_table(gtzan, tmp_path / 'cache')
    folder = spectrogram_cache_folder(tmp_path / 'cache', 'gtzan', GTZAN_CENTRE_SECONDS)
    assert not (folder / '.done').exists() and len(list(folder.glob('*.npy'))) == 5
    assert not list(folder.glob('.*.part'))                                          # no half-written file left
    monkeypatch.setattr(music_sets, 'log_mel', real)
    capsys.readouterr()
    table = gtzan_table(gtzan, tmp_path / 'cache')
    assert len(table) == 20 and (folder / '.done').exists()
    assert '15 log-mels computed, 5 reused' in capsys.readouterr().out


def test_the_cache_folder_is_keyed_by_dataset_and_settings(tmp_path):
    a = spectrogram_cache_folder(tmp_path, 'gtzan', 29.1)
    assert a.parent == tmp_path and a.name.startswith('gtzan_mel48_')
    assert a != spectrogram_cache_folder(tmp_path, 'mtg_jamendo_mp3', 29.1)
    assert a != spectrogram_cache_folder(tmp_path, 'gtzan', None) != spectrogram_cache_folder(tmp_path, 'gtzan', 29.1, 'float32')


@pytest.mark.parametrize('missing, hint', [('melon_root', 'arena.kakao.com'), ('gtzan_root', 'genres.tar.gz'),
                                           ('jamendo_root', 'github.com/MTG/mtg-jamendo-dataset')])
def test_a_missing_dataset_names_its_download(roots, tmp_path, missing, hint):
    with pytest.raises(MissingDataError, match=hint.replace('.', r'\.')) as err:
        paper_music_world(**{**roots, missing: tmp_path / 'nowhere'}, allow_missing=True)
    assert 'nowhere' in str(err.value)


def test_roots_default_to_the_loaders_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv('CROSSMODAL_HOME', str(tmp_path))
    with pytest.raises(MissingDataError, match=re.escape(str(tmp_path / 'datasets' / 'melon'))): paper_music_world()
