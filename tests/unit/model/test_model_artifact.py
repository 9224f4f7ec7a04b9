"""Loading the scorecard artifact: the packaged one works, a damaged one is refused by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from credit_assessment.model import ModelArtifactError, default_model, load_model
from credit_assessment.model.artifact import DEFAULT_PATH, dumps, parse_model, seal


def _document() -> dict[str, Any]:
    return json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scorecard.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_packaged_scorecard_loads_once_and_is_versioned() -> None:
    model = default_model()

    assert model is default_model()
    assert model.version.startswith("scorecard-")
    assert model.version == _document()["version"]
    assert model.grade_names == ("A", "B", "C", "D", "E")
    names = {c.name for c in model.characteristics}
    assert "past_delinquency" in names
    assert not names & {"age", "marital", "Age", "Marital"}  # protected attributes


def test_the_artifact_is_small() -> None:
    assert DEFAULT_PATH.stat().st_size < 10_000


def test_truncated_file_names_the_file_and_the_problem(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    path = _write(tmp_path, text[: len(text) // 2])

    with pytest.raises(ModelArtifactError) as caught:
        load_model(path)

    assert str(path) in str(caught.value)
    assert "truncated or corrupted" in str(caught.value)


def test_altered_points_fail_the_checksum(tmp_path: Path) -> None:
    document = _document()
    document["characteristics"][0]["points"][0] += 100
    path = _write(tmp_path, dumps(document))

    with pytest.raises(ModelArtifactError, match="checksum mismatch"):
        load_model(path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match="cannot read the model artifact"):
        load_model(tmp_path / "absent.json")


def test_a_policy_file_is_not_a_scorecard(tmp_path: Path) -> None:
    policy = DEFAULT_PATH.with_name("policy.json")

    with pytest.raises(ModelArtifactError, match="format is 'credit-assessment/policy'"):
        load_model(policy)


def test_a_newer_format_is_refused() -> None:
    document = _document()
    document["format_version"] = 99

    with pytest.raises(ModelArtifactError, match="format_version 99 is not supported"):
        parse_model(document, "x.json")


def test_a_mismatched_artifact_naming_unknown_characteristics_is_refused() -> None:
    document = _document()
    document["characteristics"][0]["name"] = "age"

    with pytest.raises(ModelArtifactError, match="age") as caught:
        parse_model(seal(document, "test"), "mismatched.json")

    assert "mismatched.json" in str(caught.value)


def test_structural_damage_is_described() -> None:
    document = _document()
    del document["characteristics"][1]["points"][-1]

    with pytest.raises(ModelArtifactError, match="points for"):
        parse_model(seal(document, "test"), "x.json")


def test_a_missing_field_is_named() -> None:
    document = _document()
    del document["grades"]

    with pytest.raises(ModelArtifactError, match="missing field 'grades'"):
        parse_model(seal(document, "test"), "x.json")


def test_not_a_number_is_refused(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text(encoding="utf-8").replace(
        '"base_points": 0', '"base_points": NaN'
    )
    path = _write(tmp_path, text)

    with pytest.raises(ModelArtifactError, match="non-finite"):
        load_model(path)


def test_resealing_the_committed_document_is_stable() -> None:
    document = _document()

    assert seal(document, document["version"].split("-")[1]) == document
    assert dumps(document) == DEFAULT_PATH.read_text(encoding="utf-8")
