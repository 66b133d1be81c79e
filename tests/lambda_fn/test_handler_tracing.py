"""X-Ray tracing: in Lambda the trace shows the handler, the scoring and the SageMaker call; elsewhere it is off.

Tracer and the X-Ray SDK keep process-wide state and decide at import whether they run in
Lambda, so each case imports the handler in a fresh interpreter with its own environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sentiment.featurizer import Featurizer, FeaturizerSettings

ROOT = Path(__file__).parents[2]
SAMPLE_EVENT = Path(__file__).parent / "events" / "rest_api_post_predict.json"
TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"

# The handler on the sample event, the endpoint answer stubbed in botocore (so the client's call,
# and X-Ray's patch of it, still run); what the X-Ray SDK would send to the daemon is kept.
PROBE = """
import io, json, sys
from botocore.stub import Stubber
from lambda_fn import endpoint, handler

entities = []
if not handler.tracer.disabled:
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter

    class Keep(UDPEmitter):
        def send_entity(self, entity):
            entities.append(entity.to_dict())

    xray_recorder.configure(emitter=Keep())


class Context:
    function_name, memory_limit_in_mb, aws_request_id = "fn", 128, "id"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"


prediction = {"label": "positive", "probability_positive": 0.9, "model_version": "20261128T1810Z-3f2a9c1d"}
with Stubber(endpoint.sagemaker_runtime()) as stub:
    stub.add_response("invoke_endpoint", {"Body": io.BytesIO(json.dumps({"predictions": [prediction]}).encode()),
                                          "InvokedProductionVariant": "AllTraffic"})
    response = handler.lambda_handler(json.load(open(sys.argv[1])), Context())
print(json.dumps({"status": response["statusCode"], "disabled": handler.tracer.disabled,
                  "xray_recorder_built": "aws_xray_sdk.core" in sys.modules, "entities": entities}))
"""


def run(tmp_path: Path, **env: str) -> dict[str, Any]:
    featurizer = tmp_path / "featurizer.json"
    featurizer.write_text(Featurizer(FeaturizerSettings(min_df=1)).fit(["a fine film", "a dull film"]).to_json())
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "SYSTEMROOT") if name in os.environ}
    base = {"ENDPOINT_NAME": "sentiment-test", "FEATURIZER_URI": str(featurizer), "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "ALLOWED_ORIGINS": "https://app.example.com", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(SAMPLE_EVENT)], capture_output=True, text=True,
                          env={**keep, **base, **env}, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_in_lambda_the_trace_shows_where_the_time_goes(tmp_path: Path) -> None:
    result = run(tmp_path, LAMBDA_TASK_ROOT=str(tmp_path),
                 _X_AMZN_TRACE_ID=f"Root={TRACE_ID};Parent=53995c3f42cd8ad8;Sampled=1")
    assert (result["status"], result["disabled"]) == (200, False)
    # each subsegment is sent on its own as it ends (Tracer turns X-Ray's batching off)
    traced = {entity["name"]: entity for entity in result["entities"]}
    assert set(traced) == {"## lambda_handler", "## score_reviews", "runtime.sagemaker"}
    handler, scoring, call = traced["## lambda_handler"], traced["## score_reviews"], traced["runtime.sagemaker"]
    assert {entity["trace_id"] for entity in traced.values()} == {TRACE_ID}
    assert handler["annotations"]["Service"] == "sentiment-api"
    assert "metadata" not in handler  # the answer is not copied into the trace
    assert scoring["parent_id"] == handler["id"]
    scored = scoring["metadata"]["sentiment-api"]["scored"]
    assert scored["review_count"] == 1 and scored["featurize_ms"] > 0 and scored["endpoint_ms"] > 0
    # the SageMaker call, from X-Ray's botocore patch, inside the scoring
    assert call["parent_id"] == scoring["id"] and call["namespace"] == "aws"
    assert call["aws"]["operation"] == "InvokeEndpoint" and call["aws"]["endpoint_name"] == "sentiment-test"
    assert "wonderful" not in json.dumps(result["entities"])  # the sample's review text is never traced


def test_elsewhere_tracing_is_off_and_the_xray_recorder_is_never_built(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result == {"status": 200, "disabled": True, "xray_recorder_built": False, "entities": []}


def test_powertools_trace_disabled_turns_it_off_in_lambda(tmp_path: Path) -> None:
    result = run(tmp_path, LAMBDA_TASK_ROOT=str(tmp_path), POWERTOOLS_TRACE_DISABLED="true")
    assert (result["status"], result["disabled"], result["entities"]) == (200, True, [])
