"""The IMDB loader: both fixture forms, the download cache, clear errors, the validation split."""

from __future__ import annotations

import hashlib
import http.client
import io
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from training import data
from training.data import (
    DataError,
    Split,
    download_official,
    load_imdb,
    resolve_source,
    train_validation_split,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- reading --------------------------------------------------------------------------------------
def test_folder_and_archive_give_the_same_reviews(fixture_folder, fixture_archive):
    from_folder, from_archive = load_imdb(fixture_folder), load_imdb(fixture_archive)
    assert from_folder.train == from_archive.train
    assert from_folder.test == from_archive.test
    for split in (from_archive.train, from_archive.test):
        assert len(split) == 20
        assert split.labels == [0] * 10 + [1] * 10  # neg first, then pos, by review id


def test_reads_the_review_files_verbatim_and_skips_unsup(fixture_folder, fixture_archive):
    imdb = load_imdb(fixture_archive)
    expected = (fixture_folder / "train" / "neg" / "1854_2.txt").read_text(encoding="utf-8")
    assert expected in imdb.train.texts
    assert not any("stand-in" in text for text in imdb.train.texts + imdb.test.texts)


def test_parent_of_the_aclimdb_folder_is_accepted(fixture_folder):
    assert load_imdb(fixture_folder.parent).train == load_imdb(fixture_folder).train


def test_a_folder_holding_one_archive_resolves_to_it(tmp_path, fixture_archive):
    """A SageMaker training channel is a folder with the archive inside."""
    channel = tmp_path / "training"
    channel.mkdir()
    shutil.copy(fixture_archive, channel)
    assert resolve_source(channel) == channel / fixture_archive.name
    assert len(load_imdb(channel).test) == 20


def test_imdb_data_environment_variable_is_used(monkeypatch, fixture_archive):
    monkeypatch.setenv("IMDB_DATA", str(fixture_archive))
    assert load_imdb().source == fixture_archive


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"not found at .*nowhere \(from --data\).*IMDB_DATA"):
        load_imdb(tmp_path / "nowhere")


def test_missing_path_from_environment_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("IMDB_DATA", str(tmp_path / "gone.tar.gz"))
    with pytest.raises(DataError, match=r"from IMDB_DATA"):
        load_imdb()


def test_a_folder_without_reviews_is_a_clear_error(tmp_path):
    (tmp_path / "train" / "pos").mkdir(parents=True)
    with pytest.raises(DataError, match="is it the IMDB dataset"):
        load_imdb(tmp_path)


def test_a_corrupt_archive_is_a_clear_error(tmp_path):
    bad = tmp_path / "aclImdb_v1.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(DataError, match="cannot read .* as a .tar.gz archive"):
        load_imdb(bad)


# -- downloading ------------------------------------------------------------------------------------
def test_offline_without_data_says_how_to_get_it(monkeypatch, tmp_path):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as caught:
        load_imdb()
    message = str(caught.value)
    for hint in (data.OFFICIAL_URL, "IMDB_DATA", "--data", "name resolution"):
        assert hint in message
    cache = tmp_path / "xdg-cache" / "serverless-sentiment"
    assert not cache.exists() or not any(cache.iterdir())


def test_download_verifies_caches_and_is_not_repeated(monkeypatch, tmp_path, fixture_archive):
    url = fixture_archive.as_uri()
    path = download_official(tmp_path, url=url, sha256=sha256(fixture_archive))
    assert path == tmp_path / data.ARCHIVE_NAME
    assert path.read_bytes() == fixture_archive.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [data.ARCHIVE_NAME]  # no temporary file left

    def must_not_download(*args, **kwargs):
        raise AssertionError("the cached archive should have been reused")

    monkeypatch.setattr(urllib.request, "urlopen", must_not_download)
    assert download_official(tmp_path, url=url, sha256=sha256(fixture_archive)) == path


def test_default_source_downloads_into_the_xdg_cache(monkeypatch, tmp_path, fixture_archive):
    monkeypatch.setattr(data, "OFFICIAL_URL", fixture_archive.as_uri())
    monkeypatch.setattr(data, "OFFICIAL_SHA256", sha256(fixture_archive))
    imdb = load_imdb()
    assert imdb.source == tmp_path / "xdg-cache" / "serverless-sentiment" / data.ARCHIVE_NAME
    assert len(imdb.train) == 20


def test_a_download_cut_short_is_a_clear_error_and_leaves_nothing(monkeypatch, tmp_path):
    class CutShort(io.BytesIO):
        headers = {"Content-Length": "1000"}

        def read(self, size=-1):
            if self.tell():
                raise http.client.IncompleteRead(b"", 990)
            return super().read(10)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: CutShort(b"x" * 1000))
    url = "https://example.invalid/a.tar.gz"
    with pytest.raises(DataError, match=rf"downloading {url} failed \(IncompleteRead"):
        download_official(tmp_path, url=url, sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_discards_the_download(tmp_path, fixture_archive):
    with pytest.raises(DataError, match=r"sha256 is [0-9a-f]{64}, expected 0{64}.*discarded"):
        download_official(tmp_path, url=fixture_archive.as_uri(), sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []  # neither the archive nor a temporary file


def test_the_official_checksum_is_pinned():
    assert data.OFFICIAL_SHA256 == "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
    assert data.OFFICIAL_URL == "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"


# -- validation split -----------------------------------------------------------------------------------
def balanced(n: int) -> Split:
    return Split([f"review {i}" for i in range(2 * n)], [0] * n + [1] * n)


def test_split_is_stratified_disjoint_and_complete():
    train = Split([f"r{i}" for i in range(1000)], [0] * 700 + [1] * 300)
    kept, held = train_validation_split(train, fraction=0.1, seed=3)
    assert len(held) == 100 and sum(held.labels) == 30  # 10% of each class
    assert len(kept) == 900 and sum(kept.labels) == 270
    assert set(kept.texts).isdisjoint(held.texts)
    assert sorted(kept.texts + held.texts) == sorted(train.texts)


def test_split_is_seeded():
    train = balanced(500)
    first, second = train_validation_split(train, seed=1), train_validation_split(train, seed=1)
    assert first == second
    assert train_validation_split(train, seed=2)[1] != first[1]


def test_split_keeps_labels_with_their_texts(fixture_archive):
    train = load_imdb(fixture_archive).train
    label_of = dict(zip(train.texts, train.labels))
    for part in train_validation_split(train, fraction=0.2, seed=0):
        assert all(label_of[t] == y for t, y in zip(part.texts, part.labels))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.001])
def test_split_rejects_a_fraction_that_leaves_a_side_empty(fraction):
    with pytest.raises(ValueError, match="validation"):
        train_validation_split(balanced(10), fraction=fraction)
