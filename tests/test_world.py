"""The studio music world (02n_music_world, 02o_world_audio): determinism across calls, render orders and processes,
the plan's counts, disjoint downstream artists, the cache, and interrupted renders."""
import filecmp, json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from crossmodal.core import get_profile
from crossmodal.data.studio import world_audio
from crossmodal.data.studio.world import plan_music_world, world_sizes
from crossmodal.data.studio.world_audio import load_mel, render_items, render_music_world, world_folder, world_items

SMALL = dict(world_tracks=30, world_track_seconds=(2.0, 3.0), world_listeners=6, world_playlists=12, gtzan_like_tracks=30,
             jamendo_like_tracks=16, downstream_track_seconds=2.5)
P = get_profile('tiny', **SMALL)


def files(folder):
    "Every file of a render, relative path -> bytes (the summary, with its timing, left out)."
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file() and p.name != 'summary.json'}


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp('world-a')
    return root, render_music_world(P, seed=0, root=root, workers=1, verbose=False)


def test_same_seed_same_bytes(rendered, tmp_path):
    root, world = rendered
    again = render_music_world(P, seed=0, root=tmp_path, workers=1, verbose=False)
    assert files(world.folder) == files(again.folder)
    assert len([p for p in files(world.folder) if p.endswith('.npy')]) == 30 + 30 + 16


def test_another_process_same_bytes(rendered, tmp_path):
    root, world = rendered
    code = ("from crossmodal.core import get_profile; from crossmodal.data.studio.world_audio import render_music_world; "
            f"render_music_world(get_profile('tiny', **{SMALL!r}), seed=0, root={str(tmp_path)!r}, workers=1, verbose=False)")
    subprocess.run([sys.executable, '-c', code], check=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert files(world.folder) == files(world_folder(P, 0, tmp_path))


def test_reversed_render_order_same_bytes(tmp_path):
    items = world_items(plan_music_world(**world_sizes(P), seed=0))[::3]
    render_items(items, str(tmp_path / 'forward'), 0)
    render_items(items[::-1], str(tmp_path / 'backward'), 0)
    assert all(filecmp.cmp(tmp_path / 'forward' / i['path'], tmp_path / 'backward' / i['path'], shallow=False) for i in items)


def test_another_seed_differs(rendered):
    a, b = plan_music_world(**world_sizes(P), seed=0), plan_music_world(**world_sizes(P), seed=1)
    assert a['tracks'].to_json() != b['tracks'].to_json()
    assert world_folder(P, 0) != world_folder(P, 1)


def test_counts_and_ids(rendered):
    _, world = rendered
    assert len(world.tracks) == 30 and len(world.playlists) == 12 and len(world.gtzan) == 30 and len(world.jamendo) == 16
    assert set(world.playlists.listener) <= {f'u{i:04d}' for i in range(6)}
    assert {t for ids in world.playlists.tracks for t in ids} <= set(world.tracks.id)   # every playlist's ids exist
    assert abs((world.gtzan.split == 'train').sum() - 30 * 443 / 733) <= 1
    assert set(world.tracks.split) <= {'train', 'validation', 'test'}
    for table in (world.tracks, world.gtzan, world.jamendo):
        assert all(Path(p).is_absolute() and load_mel(p).shape == (48, f) for p, f in zip(table.mel_path, table.frames))
    assert world.tracks.second_child.map(lambda s: s is None or isinstance(s, str)).all()


def test_shares_on_the_tiny_plan():
    plan = plan_music_world(**world_sizes(get_profile('tiny')), seed=0)
    tracks, playlists = plan['tracks'], plan['playlists']
    assert len(tracks) == 200 and len(playlists) == 60
    assert 0.05 <= (tracks.genres.map(len) == 0).mean() <= 0.15
    assert 0.15 <= 1 - len({t for ids in playlists.tracks for t in ids}) / len(tracks) <= 0.3
    assert (tracks.seconds < 2.05).sum() >= 2   # shorter than one 128-frame patch
    assert abs((plan['gtzan'].split == 'train').sum() - 60 * 443 / 733) <= 1
    assert set(playlists.theme_kind) == {'genre', 'mood', 'artist'}


def test_no_artist_shared_with_downstream_sets(rendered):
    _, world = rendered
    train = set(world.tracks.artist)
    assert not train & set(world.gtzan.artist) and not train & set(world.jamendo.artist) and not set(world.gtzan.artist) & set(world.jamendo.artist)
    assert set(world.tracks.soundfont) == {'FluidR3_GM'} and 'TimGM6mb' in set(world.gtzan.soundfont)


def test_cached_render_loads_without_rendering(rendered, monkeypatch):
    root, world = rendered
    def refuse(*args, **kwargs): raise AssertionError('rendered again')
    monkeypatch.setattr(world_audio, 'render_items', refuse)
    monkeypatch.setattr(world_audio, 'plan_music_world', refuse)
    again = render_music_world(P, seed=0, root=root, workers=1, verbose=False)
    assert again.tracks.to_json() == world.tracks.to_json() and again.folder == world.folder


def test_interrupted_render_leaves_no_done(tmp_path, monkeypatch):
    calls, produce = [], world_audio.produce
    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5: raise KeyboardInterrupt('interrupted mid-way')
        return produce(*args, **kwargs)
    monkeypatch.setattr(world_audio, 'produce', failing)
    with pytest.raises(KeyboardInterrupt): render_music_world(P, seed=0, root=tmp_path, workers=1, verbose=False)
    assert not list(tmp_path.rglob('.done')) and not list(tmp_path.iterdir())   # nothing left that looks finished


def test_bad_mel_file_is_named(tmp_path):
    np.save(tmp_path / 'bad.npy', np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match='bad.npy holds an array of shape'): load_mel(tmp_path / 'bad.npy')
