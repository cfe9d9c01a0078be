"""The real-dataset loaders on small fixtures in each dataset's published layout, written here by hand.

The metadata files are literal text in the official formats (not produced by the module's own fixture writers), so a
misreading of a format shared by a writer and a parser cannot hide itself."""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from crossmodal.data.manifest import MANIFEST_COLUMNS
from crossmodal.data.real.base import MissingDataError, dataset_source
from crossmodal.data.manifest import get_dataset
from crossmodal.data.real.audioset import AudioSet, descendant_ids, read_segments_csv
from crossmodal.ontology import load_audioset_ontology
from crossmodal.data.real.gtzan import GTZAN, gtzan_fault_filtered_split
from crossmodal.data.real.melon import Melon, split_by_primary_label
from crossmodal.data.real.jamendo import MTGJamendo, read_jamendo_tsv
from crossmodal.data.real.tinysol import TinySOL
from crossmodal.data.fixtures import (write_audioset_fixture, write_gtzan_fixture, write_jamendo_fixture, write_melon_fixture, write_tinysol_fixture)
from crossmodal.data.manifest import load_item


def tone(path, seconds=0.2, sr=8000):
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype('float32'), sr)
    return path


def check_manifest(df, source):
    assert list(df.columns[:len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    assert df['id'].is_unique
    assert (df['source'] == source).all() and df['licence'].str.len().gt(0).all()
    assert all(isinstance(l, list) for l in df['labels']) and all(isinstance(o, list) for o in df['ontology_ids'])
    assert all(Path(p).is_absolute() and Path(p).exists() for p in df['path'])


# ---------------------------------------------------------------- TinySOL
TINYSOL_CSV = """Path,Fold,Family,Instrument (abbr.),Instrument (in full),Technique (abbr.),Technique (in full),Pitch,Pitch ID,Dynamics,Dynamics ID,Instance ID,String ID (if applicable),Needed digital retuning
Strings/Contrabass/ordinario/Cb-ord-A2-mf-2c-N.wav,4,Strings,Cb,Contrabass,ord,ordinario,A2,45,mf,2,1,2.0,FALSE
Winds/Flute/ordinario/Fl-ord-C4-mf-N-T14d.wav,0,Winds,Fl,Flute,ord,ordinario,C4,60,mf,2,0,,TRUE
Brass/Bass_Tuba/ordinario/BTb-ord-F1-pp-N-N.wav,2,Brass,BTb,Bass Tuba,ord,ordinario,F1,29,pp,0,0,,FALSE
"""
TINYSOL_OLD_CSV = """Path,Fold,Family,Instrument,Instrument Name,Technique,Technique Name,Pitch,Pitch ID,Dynamics,Dynamics ID,Resampled,String ID
Winds/Flute/ordinario/Fl-ord-C4-mf-N.wav,2,Winds,Fl,Flute,ord,ordinario,C4,60,mf,2,False,
Strings/Contrabass/ordinario/Cb-ord-A2-mf-3cR.wav,3,Strings,Cb,Contrabass,ord,ordinario,A2,45,mf,2,True,3
"""


def tinysol_root(tmp_path, csv=TINYSOL_CSV, mirdata_layout=True):
    root = tmp_path / 'TinySOL'
    meta = root / 'annotation' / 'TinySOL_metadata.csv' if mirdata_layout else root / 'TinySOL_metadata.csv'
    meta.parent.mkdir(parents=True, exist_ok=True); meta.write_text(csv)
    audio = root / ('audio' if mirdata_layout else 'TinySOL')
    for line in csv.splitlines()[1:]: tone(audio / line.split(',')[0])
    return root


def test_tinysol_parses_labels_ontology_and_folds(tmp_path):
    m = TinySOL(tinysol_root(tmp_path)).manifest()
    check_manifest(m, 'tinysol')
    by_id = m.set_index('id')
    assert list(by_id.index) == ['Cb-ord-A2-mf-2c-N', 'Fl-ord-C4-mf-N-T14d', 'BTb-ord-F1-pp-N-N']
    assert by_id.loc['Cb-ord-A2-mf-2c-N', 'labels'] == ['Contrabass']
    assert by_id.loc['Cb-ord-A2-mf-2c-N', 'ontology_ids'] == ['/m/02fsn']        # Double bass
    assert by_id.loc['BTb-ord-F1-pp-N-N', 'ontology_ids'] == ['/m/01kcd']        # Brass instrument (no tuba node)
    assert by_id['split'].tolist() == ['fold-4', 'fold-0', 'fold-2']
    assert by_id['pitch'].tolist() == [45, 60, 29] and by_id['dynamics'].tolist() == ['mf', 'mf', 'pp']
    y, sr = load_item(m.iloc[1], sr=16000)
    assert sr == 16000 and y.dtype == np.float32 and len(y) == 3200


def test_tinysol_older_header_and_flat_layout(tmp_path):
    m = TinySOL(tinysol_root(tmp_path, TINYSOL_OLD_CSV, mirdata_layout=False)).manifest()
    assert m['labels'].tolist() == [['Flute'], ['Contrabass']] and m['split'].tolist() == ['fold-2', 'fold-3']


def test_tinysol_missing_files(tmp_path, capsys):
    root = tinysol_root(tmp_path)
    (root / 'audio/Winds/Flute/ordinario/Fl-ord-C4-mf-N-T14d.wav').unlink()
    assert TinySOL(root).validate() == ['audio/Winds/Flute/ordinario/Fl-ord-C4-mf-N-T14d.wav']
    with pytest.raises(MissingDataError, match='Fl-ord-C4-mf-N-T14d.wav') as e:
        TinySOL(root).manifest()
    assert 'Zenodo record 3685367' in str(e.value) and 'allow_missing=True' in str(e.value)
    assert e.value.missing == ['audio/Winds/Flute/ordinario/Fl-ord-C4-mf-N-T14d.wav']
    assert len(TinySOL(root, allow_missing=True).manifest()) == 2
    assert 'skipped 1 of 3 items' in capsys.readouterr().out
    (root / 'annotation/TinySOL_metadata.csv').unlink()
    assert TinySOL(root).validate() == ['annotation/TinySOL_metadata.csv']
    with pytest.raises(MissingDataError, match='metadata file'):
        TinySOL(root, allow_missing=True).manifest()                    # metadata is never optional


def test_tinysol_unknown_instrument_and_bad_header(tmp_path):
    root = tinysol_root(tmp_path, TINYSOL_CSV.replace(',Cb,Contrabass,', ',Hp,Harp,'))
    with pytest.raises(ValueError, match=r"\['Harp'\] are not in the class table"):
        TinySOL(root).manifest()
    root = tinysol_root(tmp_path / 'b', TINYSOL_CSV.replace('Path,Fold', 'File,Fold'))
    with pytest.raises(ValueError, match="no path column"):
        TinySOL(root).index()


def test_tinysol_ontology_ids_exist():
    names = {n['id']: n['name'] for n in load_audioset_ontology()}
    from crossmodal.data.real.tinysol import _tinysol_class_ids
    from crossmodal.data.real.gtzan import GTZAN_AUDIOSET_IDS
    from crossmodal.ontology import TINYSOL_CLASSES
    ids = _tinysol_class_ids(TINYSOL_CLASSES, 'test')
    assert names[ids['Violoncello'][0]] == 'Cello' and names[ids['Alto Saxophone'][0]] == 'Alto saxophone'
    assert all(i in names for i in [*(i for v in ids.values() for i in v), *GTZAN_AUDIOSET_IDS.values()])
    with pytest.raises(ValueError, match="'Kazoo'.*class table"):
        _tinysol_class_ids(['Kazoo', 'Violin'], 'TinySOL_metadata.csv')


# ---------------------------------------------------------------- AudioSet
AUDIOSET_CSV = '''# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=4, num_segs=4, num_unique_labels=6, num_positive_labels=7
# YTID, start_seconds, end_seconds, positive_labels
-0DLPzsiXXE, 30.000, 40.000, "/m/0342h,/m/04rlf"
--aE2O5G5WE, 0.000, 10.000, "/m/03fwl,/m/04rlf,/m/09x0r"
0BmJ7UIkdsE, 12.500, 22.500, "/m/04szw"
YTIDonly4xx, 100.000, 110.000, "/m/09x0r"
'''


def audioset_root(tmp_path, frames=True):
    root = tmp_path / 'audioset'; root.mkdir(parents=True, exist_ok=True)
    (root / 'eval_segments.csv').write_text(AUDIOSET_CSV)
    for clip in ['-0DLPzsiXXE_30', '--aE2O5G5WE_0', '0BmJ7UIkdsE_12.5', 'YTIDonly4xx_100']:
        tone(root / 'audio' / f'{clip}.wav', seconds=10.0, sr=2000)
        if frames:
            for k in range(10):
                (root / 'frames' / clip).mkdir(parents=True, exist_ok=True)
                Image.new('RGB', (4, 4)).save(root / 'frames' / clip / f'{k}.jpg')
    return root


def test_audioset_csv_format(tmp_path):
    root = audioset_root(tmp_path)
    segs = read_segments_csv(root / 'eval_segments.csv')
    assert segs['ytid'].tolist() == ['-0DLPzsiXXE', '--aE2O5G5WE', '0BmJ7UIkdsE', 'YTIDonly4xx']
    assert segs['label_ids'][1] == ['/m/03fwl', '/m/04rlf', '/m/09x0r']
    assert segs['start_seconds'][2] == 12.5 and segs['end_seconds'][2] == 22.5


def test_audioset_music_filter_pairs_and_window(tmp_path):
    root = audioset_root(tmp_path)
    m = AudioSet(root).manifest()
    check_manifest(m, 'audioset')
    # guitar and the bare 'Musical instrument' clip qualify; Goat+Music+Speech and Speech-only do not
    assert sorted(m['pair_id'].unique()) == ['-0DLPzsiXXE_30', '0BmJ7UIkdsE_12.5']
    assert (m['split'] == 'eval').all()
    assert m.groupby('pair_id')['modality'].apply(sorted).tolist() == [['audio', 'image']] * 2
    guitar = m[m['pair_id'] == '-0DLPzsiXXE_30']
    audio, image = guitar[guitar.modality == 'audio'].iloc[0], guitar[guitar.modality == 'image'].iloc[0]
    assert audio['labels'] == ['Guitar', 'Music'] and audio['ontology_ids'] == ['/m/0342h', '/m/04rlf']
    k = int(audio['offset_seconds'])
    assert 0 <= k <= 9 and audio['duration_seconds'] == 1.0
    assert image['path'].endswith(f'frames/-0DLPzsiXXE_30/{k}.jpg') and k <= image['frame_seconds'] < k + 1
    y, sr = load_item(audio)
    assert (len(y), sr) == (2000, 2000)
    assert load_item(image).size == (4, 4)
    # the second drawn is a function of the clip and the seed only
    assert AudioSet(root).manifest().equals(m)
    offsets = {s: AudioSet(root, seed=s).manifest().query("modality == 'audio'")['offset_seconds'].tolist() for s in range(6)}
    assert len({tuple(v) for v in offsets.values()}) > 1


def test_audioset_filters(tmp_path):
    root = audioset_root(tmp_path)
    assert AudioSet(root, include_roots=False).manifest()['pair_id'].unique().tolist() == ['-0DLPzsiXXE_30']
    assert AudioSet(root, label_filter=None).manifest()['pair_id'].nunique() == 4
    assert AudioSet(root, label_filter={'/m/09x0r'}).manifest()['pair_id'].nunique() == 2   # Speech
    with pytest.raises(ValueError, match="unknown AudioSet subset"):
        AudioSet(root, subsets=['train'])
    with pytest.raises(MissingDataError, match='balanced_train_segments.csv'):
        AudioSet(root, subsets=['balanced_train', 'eval']).manifest()


def test_audioset_descendants_match_ontology():
    onto = load_audioset_ontology()
    ids = descendant_ids(onto)
    names = {n['id']: n['name'] for n in onto}
    assert {'Guitar', 'Choir', 'Hammer', 'Musical instrument', 'Singing', 'Tools'} <= {names[i] for i in ids}
    assert 'Music' not in {names[i] for i in ids} and 'Speech' not in {names[i] for i in ids}


def test_audioset_missing_clips(tmp_path, capsys):
    root = audioset_root(tmp_path)
    (root / 'frames' / '0BmJ7UIkdsE_12.5').rename(root / 'elsewhere')
    with pytest.raises(MissingDataError, match=r'frames/0BmJ7UIkdsE_12\.5/\d\.jpg') as e:
        AudioSet(root).manifest()
    assert 'research.google.com/audioset' in str(e.value)
    m = AudioSet(root, allow_missing=True).manifest()
    assert m['pair_id'].unique().tolist() == ['-0DLPzsiXXE_30']       # the audio row goes with its missing frame
    assert 'skipped 1 of 2 items' in capsys.readouterr().out
    assert AudioSet(root).validate()[0].startswith('frames/0BmJ7UIkdsE_12.5/')


def test_audioset_video_layout(tmp_path):
    root = audioset_root(tmp_path, frames=False)
    for clip in ['-0DLPzsiXXE_30', '0BmJ7UIkdsE_12.5']:
        (root / 'video').mkdir(exist_ok=True); (root / 'video' / f'{clip}.mp4').write_bytes(b'\0')
    m = AudioSet(root, images='video').manifest()
    for _, pair in m.groupby('pair_id'):
        audio, image = pair[pair.modality == 'audio'].iloc[0], pair[pair.modality == 'image'].iloc[0]
        assert image['path'].endswith('.mp4')
        assert audio['offset_seconds'] <= image['frame_seconds'] < audio['offset_seconds'] + 1
    with pytest.raises(ImportError, match='pip install av'):
        load_item(m[m.modality == 'image'].iloc[0])


# ---------------------------------------------------------------- Melon
def melon_root(tmp_path):
    root = tmp_path / 'melon'; root.mkdir()
    meta = [{"song_gn_dtl_gnr_basket": ["GN0901"], "issue_date": "20140512", "album_name": "A", "album_id": 2255639,
             "artist_id_basket": [2727], "song_name": "s0", "song_gn_gnr_basket": ["GN0900"],
             "artist_name_basket": ["x"], "id": 0},
            {"song_gn_dtl_gnr_basket": ["GN1601", "GN1606"], "issue_date": "20080523", "album_name": "B",
             "album_id": 376431, "artist_id_basket": [29966], "song_name": "s1", "song_gn_gnr_basket": ["GN1600"],
             "artist_name_basket": ["y"], "id": 1},
            {"song_gn_dtl_gnr_basket": ["GN9999"], "issue_date": "20000101", "album_name": "C", "album_id": 1,
             "artist_id_basket": [1], "song_name": "s2", "song_gn_gnr_basket": ["GN1600"],
             "artist_name_basket": ["z"], "id": 1001},
            {"song_gn_dtl_gnr_basket": [], "issue_date": "20000101", "album_name": "D", "album_id": 2,
             "artist_id_basket": [1], "song_name": "s3", "song_gn_gnr_basket": [], "artist_name_basket": ["z"], "id": 2002}]
    (root / 'song_meta.json').write_text(json.dumps(meta, ensure_ascii=False))
    genres = {"GN0900": "팝", "GN0901": "세부장르전체", "GN1600": "클래식", "GN1601": "세부장르전체", "GN1606": "관현악"}
    (root / 'genre_gn_all.json').write_text(json.dumps(genres, ensure_ascii=False))
    for i in (0, 1, 1001):
        (root / 'arena_mel' / str(i // 1000)).mkdir(parents=True, exist_ok=True)
        np.save(root / 'arena_mel' / str(i // 1000) / f'{i}.npy', np.ones((48, 20), np.float16))
    pl = lambda i, songs: {"tags": ["t"], "id": i, "plylst_title": "p", "songs": songs, "like_cnt": 1,
                           "updt_date": "2013-12-19 18:36:19.000"}
    (root / 'train.json').write_text(json.dumps([pl(10, [0, 1]), pl(11, [1001])]))
    (root / 'val.json').write_text(json.dumps([pl(12, [2002])]))
    (root / 'test.json').write_text(json.dumps([pl(13, [])]))
    return root


def test_melon_songs_genres_and_mel(tmp_path, capsys):
    root = melon_root(tmp_path)
    m = Melon(root).manifest()
    check_manifest(m, 'melon')
    out = capsys.readouterr().out
    assert 'GN9999' in out and '3 of 4 songs' in out                      # unknown code and the song without mel
    by_id = m.set_index('id')
    assert list(by_id.index) == ['0', '1', '1001'] and (m['modality'] == 'mel').all()
    assert by_id.loc['1', 'labels'] == ['세부장르전체', '관현악'] and by_id.loc['1001', 'labels'] == ['GN9999']
    assert by_id.loc['1', 'genre_codes'] == ['GN1600']
    assert Melon(root, genres='major').manifest().set_index('id').loc['0', 'labels'] == ['팝']
    assert by_id.loc['1001', 'path'].endswith('arena_mel/1/1001.npy')
    assert load_item(m.iloc[0]).shape == (48, 20) and m['split'].isna().all()


def test_melon_playlists_and_missing(tmp_path):
    root = melon_root(tmp_path)
    pls = Melon(root).playlists().set_index('id')
    assert pls.loc['11', 'songs'] == ['1001'] and pls['file'].tolist() == ['train', 'train', 'val', 'test']
    (root / 'test.json').unlink()
    with pytest.raises(MissingDataError, match='test.json'):
        Melon(root).playlists()
    import shutil; shutil.rmtree(root / 'arena_mel')
    assert Melon(root).validate() == ['arena_mel']
    with pytest.raises(MissingDataError, match='arena.kakao.com/melon_dataset'):
        Melon(root).manifest()


def test_split_by_primary_label_is_stratified_and_seeded(tmp_path):
    import pandas as pd
    df = pd.DataFrame({'id': [str(i) for i in range(40)], 'labels': [['a']] * 20 + [['b', 'a']] * 20})
    s = split_by_primary_label(df, seed=3)
    counts = s.groupby([s['labels'].str[0], 'split']).size().to_dict()
    assert counts == {('a', 'test'): 2, ('a', 'train'): 16, ('a', 'validation'): 2,
                      ('b', 'test'): 2, ('b', 'train'): 16, ('b', 'validation'): 2}
    assert split_by_primary_label(df, seed=3).equals(s) and not split_by_primary_label(df, seed=4)['split'].equals(s['split'])
    with pytest.raises(ValueError, match='sum to 1'):
        split_by_primary_label(df, {'train': 0.5})


# ---------------------------------------------------------------- GTZAN
def test_gtzan_fault_filtered_split_facts():
    split_of = gtzan_fault_filtered_split()
    sizes = {s: sum(v == s for v in split_of.values()) for s in ('train', 'validation', 'test')}
    assert sizes == {'train': 443, 'validation': 197, 'test': 290}     # Kereliuk et al. 2015; Ferraro et al. 2021
    per_genre = {g: sum(k.startswith(g + '.') for k in split_of) for g in ('blues', 'pop', 'rock', 'jazz')}
    assert per_genre == {'blues': 100, 'pop': 84, 'rock': 100, 'jazz': 87}
    # spot checks against the published lists
    assert split_of['disco.00005'] == 'train' and split_of['hiphop.00000'] == 'test'
    assert split_of['reggae.00069'] == 'train' and split_of['metal.00082'] == 'validation' and split_of['pop.00096'] == 'test'
    assert 'country.00008' not in split_of and 'hiphop.00001' not in split_of


def test_gtzan_user_split_files(tmp_path):
    d = tmp_path / 'lists'; d.mkdir()
    (d / 'train_filtered.txt').write_text('blues/blues.00029.au\nrock/rock.00000.au\n')
    (d / 'valid_filtered.txt').write_text('blues/blues.00000.au\n')
    (d / 'test_filtered.txt').write_text('jazz/jazz.00099.wav\n')
    assert gtzan_fault_filtered_split(d) == {'blues.00029': 'train', 'rock.00000': 'train',
                                             'blues.00000': 'validation', 'jazz.00099': 'test'}
    root = tmp_path / 'gtzan'
    for i in ('blues.00029', 'rock.00000', 'blues.00000', 'jazz.00099'):
        tone(root / 'genres_original' / i.split('.')[0] / f'{i}.wav')
    m = GTZAN(root, split_dir=d).manifest()
    check_manifest(m, 'gtzan')
    assert m.set_index('id')['split'].to_dict() == {'blues.00000': 'validation', 'blues.00029': 'train',
                                                    'jazz.00099': 'test', 'rock.00000': 'train'}
    assert m.set_index('id').loc['jazz.00099', 'ontology_ids'] == ['/m/03_d0']
    (d / 'test_filtered.txt').write_text('blues/blues.00029.au\n')
    with pytest.raises(ValueError, match='blues.00029 is in both train and test'):
        gtzan_fault_filtered_split(d)
    (d / 'test_filtered.txt').unlink()
    with pytest.raises(FileNotFoundError, match='coreyker/dnn-mgr'):
        gtzan_fault_filtered_split(d)


def test_gtzan_layout_and_errors(tmp_path, capsys):
    root = tmp_path / 'gtzan'
    tone(root / 'genres' / 'blues' / 'blues.00029.au')
    tone(root / 'genres' / 'pop' / 'pop.00037.au')                       # not in the fault-filtered split
    with pytest.raises(MissingDataError, match='929 item file'):
        GTZAN(root).manifest()
    m = GTZAN(root, allow_missing=True).manifest()
    assert m['id'].tolist() == ['blues.00029'] and m['labels'].tolist() == [['blues']]
    assert 'skipped 929 of 930' in capsys.readouterr().out
    m = GTZAN(root, split='all', allow_missing=True).manifest()
    assert m['id'].tolist() == ['blues.00029', 'pop.00037'] and m['split'].isna().all()
    with pytest.raises(MissingDataError, match='genres.tar.gz'):
        GTZAN(tmp_path / 'empty').manifest()


# ---------------------------------------------------------------- MTG-Jamendo
JAMENDO_HEADER = 'TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n'
JAMENDO_ROWS = {
    'track_0000948': 'track_0000948\tartist_000087\talbum_000149\t48/948.mp3\t212.7\tgenre---rock\tinstrument---guitar\tmood/theme---energetic\n',
    'track_0000950': 'track_0000950\tartist_000087\talbum_000149\t50/950.mp3\t248.0\tgenre---rock\n',
    'track_0001049': 'track_0001049\tartist_000087\talbum_000149\t49/1049.mp3\t180.0\tgenre---pop\tgenre---rock\n',
    'track_0002263': 'track_0002263\tartist_000326\talbum_000381\t63/2263.mp3\t292.4\tgenre---electronic\n',
}


def jamendo_root(tmp_path, splits={'train': ['track_0000948', 'track_0000950'], 'validation': ['track_0001049'],
                                   'test': ['track_0002263']}, k=1, audio='audio', ext='.mp3'):
    root = tmp_path / 'mtg-jamendo-dataset'
    (root / 'data' / 'splits' / f'split-{k}').mkdir(parents=True)
    (root / 'data' / 'autotagging.tsv').write_text(JAMENDO_HEADER + ''.join(JAMENDO_ROWS.values()))
    for s, ids in splits.items():
        (root / 'data' / 'splits' / f'split-{k}' / f'autotagging-{s}.tsv').write_text(JAMENDO_HEADER + ''.join(JAMENDO_ROWS[i] for i in ids))
    for row in JAMENDO_ROWS.values():
        p = root / audio / row.split('\t')[3].replace('.mp3', ext)
        if ext == '.npy': p.parent.mkdir(parents=True, exist_ok=True); np.save(p, np.zeros((96, 8), np.float32))
        else: tone(p)
    return root


def test_jamendo_tsv_tags_and_splits(tmp_path):
    root = jamendo_root(tmp_path)
    t = read_jamendo_tsv(root / 'data' / 'autotagging.tsv').set_index('track_id')
    assert t.loc['track_0000948', 'tags'] == ['genre---rock', 'instrument---guitar', 'mood/theme---energetic']
    assert t.loc['track_0000950', 'duration'] == 248.0 and t.loc['track_0001049', 'path'] == '49/1049.mp3'
    m = MTGJamendo(root, subset='autotagging', split_number=1).manifest()
    check_manifest(m, 'mtg_jamendo')
    by_id = m.set_index('id')
    assert by_id['split'].to_dict() == {'track_0000948': 'train', 'track_0000950': 'train',
                                        'track_0001049': 'validation', 'track_0002263': 'test'}
    assert by_id.loc['track_0001049', 'labels'] == ['genre---pop', 'genre---rock']
    assert by_id.loc['track_0000948', 'artist_id'] == 'artist_000087'
    assert by_id.loc['track_0002263', 'path'].endswith('audio/63/2263.mp3')
    y, sr = load_item(m.iloc[0])
    assert sr == 8000 and len(y) > 0


def test_jamendo_audio_variants(tmp_path):
    m = MTGJamendo(jamendo_root(tmp_path / 'a', audio='melspecs', ext='.npy'), subset='autotagging', split_number=1,
                   audio='npy').manifest()
    assert (m['modality'] == 'mel').all() and m['path'].iloc[0].endswith('melspecs/48/948.npy')
    m = MTGJamendo(jamendo_root(tmp_path / 'b', audio='audio-low', ext='.low.mp3'), subset='autotagging',
                   split_number=1, audio='low').manifest()
    assert m['path'].iloc[0].endswith('audio-low/48/948.low.mp3')


def test_jamendo_errors(tmp_path, capsys):
    root = jamendo_root(tmp_path / 'a', splits={'train': ['track_0000948'], 'validation': [], 'test': ['track_0002263']})
    m = MTGJamendo(root, subset='autotagging', split_number=1).manifest()
    assert m['split'].isna().sum() == 2 and '2 track(s) of autotagging.tsv are in no split' in capsys.readouterr().out
    root = jamendo_root(tmp_path / 'b', splits={'train': ['track_0000948'], 'validation': ['track_0000948'], 'test': []})
    with pytest.raises(ValueError, match='track_0000948 is in both train and validation'):
        MTGJamendo(root, subset='autotagging', split_number=1).manifest()
    with pytest.raises(MissingDataError, match=r'data/splits/split-0/autotagging-train.tsv'):
        MTGJamendo(root, subset='autotagging', split_number=0).manifest()
    (root / 'data' / 'autotagging.tsv').write_text('id\tpath\n1\tx.mp3\n')
    with pytest.raises(ValueError, match='MTG-Jamendo header'):
        MTGJamendo(root, subset='autotagging', split_number=1).manifest()
    with pytest.raises(ValueError, match='split_number must be 0-4'):
        MTGJamendo(root, split_number=5)


# ---------------------------------------------------------------- dispatch and the module's own fixtures
@pytest.mark.parametrize('name,write', [('tinysol', write_tinysol_fixture), ('audioset', write_audioset_fixture),
                                        ('melon', write_melon_fixture), ('mtg_jamendo', write_jamendo_fixture)])
def test_get_dataset_on_module_fixtures(tmp_path, name, write):
    root = write(tmp_path / name)
    loader = get_dataset(name, root)
    assert loader.validate() == []
    check_manifest(loader.manifest(), name)
    capped = get_dataset(name, root, max_items=2).manifest()
    group = capped['pair_id'] if 'pair_id' in capped else capped['id']
    assert group.nunique() == 2


def test_gtzan_module_fixture(tmp_path):
    root = write_gtzan_fixture(tmp_path, ext='.wav', per_split=2)
    m = GTZAN(root, allow_missing=True).manifest()
    assert len(m) == 60 and m['path'].str.endswith('.wav').all()


def test_dispatch_and_profiles(tmp_path, monkeypatch):
    monkeypatch.setenv('CROSSMODAL_HOME', str(tmp_path / 'home'))
    assert isinstance(get_dataset('GTZAN', tmp_path), GTZAN)
    assert get_dataset('tinysol').root == tmp_path / 'home' / 'datasets' / 'tinysol'   # default: data_home()
    with pytest.raises(ValueError, match='unknown dataset'):
        get_dataset('fma', tmp_path)
    assert dataset_source('paper') == 'paper' and dataset_source('tiny') == 'studio' and dataset_source('studio') == 'studio'
    for name in ('tinysol', 'audioset', 'melon', 'gtzan', 'mtg_jamendo'):
        hint = get_dataset(name, tmp_path).download_hint()
        assert str(tmp_path) in hint and 'Expected layout' in hint
