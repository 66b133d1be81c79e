"""The Lambda zip: the lambda_fn and sentiment folders, under 1 MB, working with the Lambda's dependencies alone.

The zip is built as the CDK stack builds it (``infra.packaging.LAMBDA_FOLDERS``, whole, at the
zip's root). A fresh interpreter then imports the handler with nothing on its
path but the unzipped code and the distributions that requirements/lambda.txt pulls in (boto3
comes with the Lambda runtime and Powertools with its managed layer).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from infra.packaging import zip_folders

ROOT = Path(__file__).parents[2]
SAMPLE_EVENT = Path(__file__).parent / "events" / "rest_api_post_predict.json"
HEAVY = ("numpy", "torch", "onnxruntime", "moto", "pytest", "yaml", "requests")  # not in the Lambda
RUNTIME_MODULES = {"lambda_fn": {"__init__.py", "handler.py", "validation.py", "endpoint.py", "snapshot.py"},
                   "sentiment": {"__init__.py", "featurizer.py", "wire.py", "artifacts.py", "batch.py", "drift.py"}}


def lambda_distributions() -> list[metadata.Distribution]:
    """requirements/lambda.txt and everything it depends on (no extras)."""
    lines = (ROOT / "requirements" / "lambda.txt").read_text().splitlines()
    todo = [Requirement(line).name for line in lines if line.strip() and not line.startswith("#")]
    found: dict[str, metadata.Distribution] = {}
    while todo:
        dist = metadata.distribution(todo.pop())
        if dist.metadata["Name"].lower() not in found:
            found[dist.metadata["Name"].lower()] = dist
            for requirement in map(Requirement, dist.requires or []):
                if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                    todo.append(requirement.name)
    return list(found.values())


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("package") / "lambda.zip"
    path.write_bytes(zip_folders(ROOT))
    return path


def test_the_folder_and_the_zip_hold_only_what_the_function_needs(package: Path) -> None:
    for folder, modules in RUNTIME_MODULES.items():
        assert {path.name for path in (ROOT / folder).iterdir() if path.name != "__pycache__"} == modules
    assert set(zipfile.ZipFile(package).namelist()) == {
        f"{folder}/{name}" for folder, modules in RUNTIME_MODULES.items() for name in modules}
    assert package.stat().st_size < 1_000_000


@pytest.mark.parametrize("initialization_type", ["on-demand", "snap-start"])
def test_the_handler_answers_with_only_the_lambda_dependencies(package: Path, tmp_path: Path,
                                                               initialization_type: str) -> None:
    """Under SnapStart too, where the runtime also provides its hooks library, snapshot_restore_py."""
    code, deps = tmp_path / "code", tmp_path / "deps"
    zipfile.ZipFile(package).extractall(code)
    deps.mkdir()
    runtime = [metadata.distribution("snapshot-restore-py")] if initialization_type == "snap-start" else []
    for dist in lambda_distributions() + runtime:
        for top in {file.parts[0] for file in dist.files or []}:
            if top not in ("..", "__pycache__") and not top.endswith((".dist-info", ".data")):
                (deps / top).symlink_to(dist.locate_file(top))
    probe = f"""
import importlib.util, json, sys
sys.path[:0] = [{str(code)!r}, {str(deps)!r}]
from lambda_fn.handler import lambda_handler

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "fn", 128, "id"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"

response = lambda_handler(json.load(open({str(SAMPLE_EVENT)!r})), Context())
print(json.dumps({{
    "file": sys.modules["lambda_fn.handler"].__file__,
    "reachable": [name for name in {HEAVY!r} if importlib.util.find_spec(name)],
    "status": response["statusCode"],
    "body": json.loads(response["body"]),
    "origin": response["multiValueHeaders"]["Access-Control-Allow-Origin"],
}}))
"""
    # No ENDPOINT_NAME: the sample POST goes through validation and the endpoint module to a 503.
    env = {"ALLOWED_ORIGINS": "https://app.example.com", "AWS_DEFAULT_REGION": "us-east-1",
           "PATH": "/usr/bin:/bin", "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type}
    run = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["file"] == str(code / "lambda_fn" / "handler.py")
    assert result["reachable"] == []
    assert (result["status"], result["body"]["error"]) == (503, "not_configured")
    assert result["origin"] == ["https://app.example.com"]
