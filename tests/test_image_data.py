"End-to-end checks of `crossmodal.data.studio.images`: determinism, caching, interrupted renders, bad inputs."
import json, os, shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('CROSSMODAL_QUIET', '1')

from crossmodal.core import get_profile, file_sha256, cache_use, RUN_DIR_VARIABLE
from crossmodal.data.manifest import damaged_files
import crossmodal.data.studio.images as images
from crossmodal.data.studio.drawings import (IMAGE_SETS, ImageSet, list_instrument_drawings, list_pictograms, ontology_ids)
from crossmodal.data.manifest import read_manifest
from crossmodal.data.studio.images import (IMAGE_COLUMNS as MANIFEST_COLUMNS, render_images, render_log, assign_splits, TEST_FAMILIES)
from crossmodal.data.manifest import load_image
from crossmodal.ontology import load_audioset_ontology

SMALL = dict(sets=['openmoji', 'twemoji', 'game-icons', 'fluent'], classes=['violin', 'trumpet'])
P_SMALL = get_profile('tiny', augmentations_per_drawing=3, image_size=32, max_items=None)


def png_bytes(folder, manifest):
    return {p: (Path(folder) / p).read_bytes() for p in manifest.path}


def test_manifest_shape_and_files(tmp_path):
    m = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    assert list(m.columns) == MANIFEST_COLUMNS
    assert m.id.is_unique and (m.modality == 'image').all()
    assert set(m.labels.str[0]) == {'violin', 'trumpet'} and set(m.source) == set(SMALL['sets'])
    assert len(m) == 3 * m.drawing_id.nunique() and set(m.augmentation) == {0, 1, 2}
    folder = Path(m.attrs['root'])
    assert folder.is_relative_to(tmp_path / 'studio') and folder.name == 'images'
    for p in m.path:
        assert not Path(p).is_absolute()
        img = load_image(folder / p)
        assert img.size == (32, 32) and img.mode == 'RGB'
    # split by family: test families only in test, and every family in one split
    assert (m.groupby('design_family').split.nunique() == 1).all()
    assert set(m.loc[m.split == 'test', 'design_family']) == set(TEST_FAMILIES) & set(m.design_family)
    # attribution next to the images, one row per drawing with a licence
    attribution = pd.read_csv(folder / 'ATTRIBUTION.csv')
    assert len(attribution) == m.drawing_id.nunique() and attribution.licence.notna().all()
    assert {'CC-BY-SA-4.0', 'CC-BY-4.0', 'CC-BY-3.0', 'MIT'} <= set(attribution.licence)
    # ontology ids are real AudioSet ids
    ontology = {n['id'] for n in load_audioset_ontology()}
    assert all(i in ontology for ids in m.ontology_ids for i in ids)


def test_deterministic_across_roots(tmp_path):
    a = render_images(P_SMALL, seed=3, root=tmp_path / 'a', verbose=False, **SMALL)
    b = render_images(P_SMALL, seed=3, root=tmp_path / 'b', verbose=False, **SMALL)
    pd.testing.assert_frame_equal(a, b)
    assert png_bytes(a.attrs['root'], a) == png_bytes(b.attrs['root'], b)
    c = render_images(P_SMALL, seed=4, root=tmp_path / 'c', verbose=False, **SMALL)
    assert Path(c.attrs['root']).parent.name != Path(a.attrs['root']).parent.name  # the seed is in the key
    augmented = a.augmentation > 0
    assert png_bytes(a.attrs['root'], a[augmented]) != png_bytes(c.attrs['root'], c[augmented])
    plain = ~augmented  # variant 0 does not depend on the seed
    assert list(png_bytes(a.attrs['root'], a[plain]).values()) == list(png_bytes(c.attrs['root'], c[plain]).values())


def test_second_call_reads_cache(tmp_path, monkeypatch):
    m = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    def boom(*a, **k): raise AssertionError("rendered again")
    monkeypatch.setattr(images, 'render_drawing', boom)
    again = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    pd.testing.assert_frame_equal(m, again)


def test_interrupted_render_is_not_taken_as_complete(tmp_path):
    m = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    folder = Path(m.attrs['root'])
    (folder / '.done').unlink()  # as if the process died before the marker
    (folder / 'manifest.csv').write_text('garbage')
    with pytest.raises(FileNotFoundError, match='not a finished render'): read_manifest(folder)
    again = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    pd.testing.assert_frame_equal(m, again)
    assert (folder / '.done').exists()
    assert not list(folder.parent.glob('.images.tmp-*'))


def test_corrupt_svg_is_skipped_and_counted(tmp_path, monkeypatch, capsys):
    bad = tmp_path / 'broken.svg'
    bad.write_text('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0')
    real = images.list_instrument_drawings
    def with_bad(sets=None):
        d = real(sets)
        row = d.iloc[0].copy()
        row['drawing_id'], row['source'], row['design_family'], row['name'], row['ref'] = \
            'openclipart:broken', 'openclipart', 'openclipart', 'broken', str(bad)
        return pd.concat([d, row.to_frame().T], ignore_index=True)
    monkeypatch.setattr(images, 'list_instrument_drawings', with_bad)
    m = render_images(P_SMALL, seed=0, root=tmp_path / 'out', verbose=True, **SMALL)
    out = capsys.readouterr().out
    assert 'skipped 1 drawing' in out and 'openclipart:broken' in out
    assert 'openclipart:broken' not in set(m.drawing_id)
    assert len(render_log(m.attrs['root'])['skipped']) == 1


def test_missing_packages_name_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv('CROSSMODAL_ASSETS', str(tmp_path / 'no_node_modules'))
    with pytest.raises(FileNotFoundError, match="npm package '@twemoji/svg'"):
        render_images(P_SMALL, root=tmp_path, sets=['twemoji'])
    monkeypatch.delenv('CROSSMODAL_ASSETS')
    moved = ImageSet(**{**IMAGE_SETS['noto'].__dict__, 'location': str(tmp_path / 'NotoColorEmoji.ttf')})
    monkeypatch.setitem(IMAGE_SETS, 'noto', moved)
    with pytest.raises(FileNotFoundError, match='apt-get install fonts-noto-color-emoji'):
        list_instrument_drawings(['noto'])


def test_unknown_names_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown instrument class.*kazoo"):
        render_images(P_SMALL, root=tmp_path, sets=['twemoji'], classes=['kazoo'])
    with pytest.raises(ValueError, match="unknown image set 'clipart'"):
        list_instrument_drawings(['clipart'])
    with pytest.raises(ValueError, match='unknown instrument class'): ontology_ids('kazoo')
    with pytest.raises(ValueError, match='unknown design family'):
        assign_splits(pd.DataFrame({'design_family': ['wingdings']}))


def test_load_image_modes_and_corrupt_file(tmp_path):
    rgba = Image.new('RGBA', (3, 3), (0, 0, 0, 0)); rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / 'a.png')
    Image.new('L', (3, 3), 7).save(tmp_path / 'g.png')
    Image.new('P', (3, 3), 0).save(tmp_path / 'p.png')
    assert load_image(tmp_path / 'a.png').getpixel((1, 1)) == (255, 255, 255)
    assert load_image(tmp_path / 'a.png').getpixel((0, 0)) == (0, 0, 255)
    assert load_image(tmp_path / 'g.png', size=(5, 4)).size == (5, 4)
    assert load_image(tmp_path / 'p.png').mode == 'RGB'
    assert load_image(tmp_path / 'g.png', mode='L').mode == 'L'
    (tmp_path / 'bad.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)
    with pytest.raises(ValueError, match='bad.png'): load_image(tmp_path / 'bad.png')
    with pytest.raises(FileNotFoundError, match='missing.png'): load_image(tmp_path / 'missing.png')


def test_tiny_profile_respects_cap_and_covers_splits(tmp_path):
    P = get_profile('tiny', max_items=60)
    m = render_images(P, root=tmp_path, verbose=False)
    assert len(m) <= 60 and set(m.split) == {'train', 'valid', 'test'}
    assert m.labels.str[0].nunique() >= 15  # round-robin over classes keeps many classes


def test_pictograms_leave_instruments_out():
    pictograms = list_pictograms(sets=('openmoji', 'twemoji', 'noto'))
    assert len(pictograms) > 3000
    assert not pictograms.subgroup.eq('musical-instrument').any()
    assert not pictograms.hexcode.isin(['1F3BB', '1F3A4', '1F4EF']).any()
    assert {'smileys-emotion', 'animals-nature', 'food-drink'} <= set(pictograms.group)


def test_min_sets_keeps_widely_drawn_classes(tmp_path):
    P = get_profile('tiny', max_items=None)
    m = render_images(P, root=tmp_path, verbose=False, min_sets=4)
    assert set(m.labels.str[0]) == set(images.usable_classes(list_instrument_drawings(), 4))
    assert 'tuba' not in set(m.labels.str[0]) and 'harp' in set(m.labels.str[0])


def test_manifest_records_each_images_checksum(tmp_path):
    m = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    folder = Path(m.attrs['root'])
    assert m.sha256.tolist() == [file_sha256(folder / p) for p in m.path]
    (folder / m.path[0]).write_bytes(b'not a png')
    with pytest.raises(ValueError, match=rf"1 of {len(m)} rendered images .* missing or damaged"): read_manifest(folder)
    assert len(read_manifest(folder, verify=False)) == len(m)


def test_damaged_images_rerendered_alone(tmp_path, monkeypatch, capsys):
    m = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    folder = Path(m.attrs['root'])
    before = png_bytes(folder, m)
    (folder / m.path[4]).unlink()
    rendered = []
    real = images.render_drawing
    def counting(source, ref, px): rendered.append(ref); return real(source, ref, px)
    monkeypatch.setattr(images, 'render_drawing', counting)
    capsys.readouterr()
    again = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    assert len(rendered) == 1  # only the damaged image's drawing, not the whole set
    assert png_bytes(folder, again) == before and again.attrs['rerendered'] == [m.id[4]]
    assert capsys.readouterr().out.count('\n') == 1


def test_pre_checksum_image_render_is_rendered_again(tmp_path, capsys):
    m = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    folder = Path(m.attrs['root'])
    before = png_bytes(folder, m)
    m.drop(columns='sha256').to_csv(folder / 'manifest.csv', index=False)
    capsys.readouterr()
    again = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    assert 'rendered before images had checksums' in capsys.readouterr().out
    assert png_bytes(folder, again) == before and damaged_files(folder, again) == []
    assert not list(folder.parent.glob('.images.*'))  # neither the temporary folder nor the old one is left


def test_image_cache_use_counts_images(tmp_path, monkeypatch):
    run = tmp_path / 'run'; run.mkdir()
    monkeypatch.setenv(RUN_DIR_VARIABLE, str(run))
    m = render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    render_images(P_SMALL, seed=0, root=tmp_path, verbose=False, **SMALL)
    lines = [json.loads(l) for l in (run / 'cache_use.jsonl').read_text().splitlines()]
    assert [(l['stage'], l['hits'], l['misses']) for l in lines] == [('render studio images', 0, len(m)), ('render studio images', len(m), 0)]
    assert cache_use(run).state.tolist() == ['partly warm']
