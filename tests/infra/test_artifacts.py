"""The training output is checked before anything is synthesized; a bad folder says what to run."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from infra import create_app
from infra.artifacts import check_candidate, read_training_output
from sentiment.artifacts import ArtifactError
from sentiment.featurizer import Featurizer, FeaturizerSettings

MODEL_VERSION = "20261128T1810Z-3f2a9c1d"  # what the conftest writes
TRAIN_HINT = ("make train", "python -m training --out")


def test_a_complete_folder_is_read(tmp_path: Path, make_artifacts) -> None:
    artifacts = read_training_output(make_artifacts(tmp_path))
    assert artifacts.model_version == MODEL_VERSION
    assert artifacts.featurizer_fingerprint == Featurizer.load(tmp_path / "featurizer.json").fingerprint


def test_a_missing_folder_says_to_train_first(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as err:
        read_training_output(tmp_path / "artifacts")
    assert "does not exist" in str(err.value)
    assert all(hint in str(err.value) for hint in TRAIN_HINT)


@pytest.mark.parametrize("name", ["model.onnx", "featurizer.json", "metrics.json", "model.tar.gz"])
def test_an_incomplete_folder_names_the_missing_file(tmp_path: Path, make_artifacts, name: str) -> None:
    (make_artifacts(tmp_path) / name).unlink()
    with pytest.raises(ArtifactError) as err:
        read_training_output(tmp_path)
    assert f"missing {name}" in str(err.value)
    assert all(hint in str(err.value) for hint in TRAIN_HINT)


def test_metrics_without_a_version_are_refused(tmp_path: Path, make_artifacts) -> None:
    make_artifacts(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.9}}))
    with pytest.raises(ArtifactError, match="model_version"):
        read_training_output(tmp_path)


def test_a_malformed_version_is_refused(tmp_path: Path, make_artifacts) -> None:
    make_artifacts(tmp_path, version="latest")
    with pytest.raises(ArtifactError, match="YYYYMMDDTHHMMZ"):
        read_training_output(tmp_path)


def test_a_featurizer_from_another_run_is_refused(tmp_path: Path, make_artifacts) -> None:
    make_artifacts(tmp_path)
    Featurizer(FeaturizerSettings(min_df=1)).fit(["another vocabulary"]).save(tmp_path / "featurizer.json")
    with pytest.raises(ArtifactError, match="not the one metrics.json was trained with"):
        read_training_output(tmp_path)


def test_an_archive_without_the_model_at_its_root_is_refused(tmp_path: Path, make_artifacts) -> None:
    make_artifacts(tmp_path)
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "model.onnx", "artifacts/model.onnx")
        archive.add(tmp_path / "featurizer.json", "featurizer.json")
    with pytest.raises(ArtifactError, match="lacks model.onnx at its root"):
        read_training_output(tmp_path)


def test_an_archive_that_is_not_gzip_is_refused(tmp_path: Path, make_artifacts) -> None:
    make_artifacts(tmp_path)
    (tmp_path / "model.tar.gz").write_bytes(b"plain bytes")
    with pytest.raises(ArtifactError, match="not a gzip tar archive"):
        read_training_output(tmp_path)


def test_the_app_refuses_to_build_without_artifacts(tmp_path: Path, cdk_context) -> None:
    with pytest.raises(ArtifactError) as err:
        create_app(outdir=str(tmp_path / "cdk.out"), context=cdk_context(model_dir=str(tmp_path / "none")))
    assert all(hint in str(err.value) for hint in TRAIN_HINT)
    assert not (tmp_path / "cdk.out" / "ServerlessSentiment.template.json").exists()


def test_an_archive_with_another_featurizer_is_refused(tmp_path: Path, make_artifacts) -> None:
    """The server loads the featurizer inside model.tar.gz: it must be the folder's featurizer.json."""
    make_artifacts(tmp_path)
    stale = tmp_path / "stale.json"
    Featurizer(FeaturizerSettings(min_df=1)).fit(["another vocabulary"]).save(stale)
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "model.onnx", "model.onnx")
        archive.add(stale, "featurizer.json")
    with pytest.raises(ArtifactError, match="holds a featurizer .* other than featurizer.json"):
        read_training_output(tmp_path)


def test_a_candidate_must_share_the_current_featurizer(tmp_path: Path, make_artifacts) -> None:
    current = read_training_output(make_artifacts(tmp_path / "current"))
    same = read_training_output(make_artifacts(tmp_path / "same", version="20261201T0900Z-0badc0de"))
    check_candidate(current, same)  # same featurizer, another model: fine
    other = read_training_output(make_artifacts(tmp_path / "other", version="20261201T0900Z-0badc0de",
                                               texts=("a whole other", "vocabulary")))
    with pytest.raises(ArtifactError) as err:
        check_candidate(current, other)
    assert current.featurizer_fingerprint in str(err.value)
    assert other.featurizer_fingerprint in str(err.value)
