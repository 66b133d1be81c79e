"""local_stack.template reads the synthesized template (the tiny model's) as the local stack runs it.

Every value below comes from the template that `cdk synth` wrote from cdk.json: nothing is a
constant of local_stack/. Malformed templates are refused with a message naming what is wrong.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from local_stack.template import Addresses, Resolver, TemplateError, load_stack, model_of, read_template
from sentiment.featurizer import Featurizer
from tests.local_stack.conftest import add_function, add_route, lambda_integration, of_type, real_function_id
from tests.support import MODEL_VERSION, REPO_ROOT

ADDRESSES = Addresses(site_origin="http://127.0.0.1:18000", api_origin="http://127.0.0.1:18001")


@pytest.fixture(scope="module")
def model(synthesized: Path):
    return load_stack(synthesized, ADDRESSES)


def test_the_api_is_the_templates_resources_and_methods(model) -> None:
    api = model.api
    assert api.name == "ServerlessSentiment-api"
    assert {path: set(methods) for path, methods in api.resources.items()} == {
        "/": {"ANY"}, "/predict": {"ANY"}, "/predict/{proxy+}": {"ANY"}, "/{proxy+}": {"ANY"}}
    function = model.function()
    for methods in api.resources.values():
        integration = methods["ANY"].integration
        assert (integration.type, integration.function, integration.http_method) == ("AWS_PROXY", function.logical_id,
                                                                                     "POST")
        assert integration.timeout_ms == 29_000  # API Gateway's default: the template sets none


@pytest.mark.parametrize("path, resource, parameters", [
    ("/", "/", None),
    ("/predict", "/predict", None),
    ("/predict/", "/predict/{proxy+}", {"proxy": ""}),
    ("/predict/a/b", "/predict/{proxy+}", {"proxy": "a/b"}),
    ("/predictions", "/{proxy+}", {"proxy": "predictions"}),
    ("/a/b/c", "/{proxy+}", {"proxy": "a/b/c"}),
    ("//predict", "/{proxy+}", {"proxy": "/predict"}),
])
def test_paths_are_routed_as_api_gateway_routes_them(model, path, resource, parameters) -> None:
    assert model.api.match(path) == (resource, parameters)


def test_the_stage_throttle_and_firewall_are_the_templates(model) -> None:
    (stage,) = model.api.stages.values()
    assert stage.name == "prod" and stage.variables == {}
    assert set(stage.throttles) == {("*", "*")}  # one MethodSettings entry: every method of the stage
    throttle = stage.throttles[("*", "*")]
    assert (throttle.rate, throttle.burst) == (10, 20)  # api_rate_limit, api_burst_limit in cdk.json
    firewall = stage.firewall
    assert firewall is not None and firewall.default_action == "Allow"
    (rule,) = firewall.rules
    assert (rule.limit, rule.window_s, rule.action) == (300, 300, "Block")  # waf_rate_limit
    assert rule.custom_response.status == 429
    assert rule.custom_response.headers["Access-Control-Allow-Origin"] == ADDRESSES.site_origin  # mapped
    assert rule.custom_response.headers["Retry-After"] == "60"
    assert json.loads(rule.custom_response.body)["error"] == "too_many_requests"


def test_gateway_responses_are_the_templates_with_the_site_mapped(model) -> None:
    responses = model.api.gateway_responses
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT",
                              "REQUEST_TOO_LARGE", "THROTTLED", "WAF_FILTERED"}
    throttled = responses["THROTTLED"]
    assert throttled.status == 429 and throttled.headers["Retry-After"] == "'1'"
    assert throttled.headers["Access-Control-Allow-Origin"] == f"'{ADDRESSES.site_origin}'"
    assert "$context.error.messageString" in throttled.templates["application/json"]
    assert responses["DEFAULT_5XX"].status is None


def test_the_function_is_the_templates(model, model_dir: Path, template_json) -> None:
    function = model.function()
    props = template_json["Resources"][function.logical_id]["Properties"]
    assert function.handler == props["Handler"] == "lambda_fn.handler.lambda_handler"
    assert (function.runtime, function.timeout_s, function.memory_mb, function.reserved_concurrency) == (
        props["Runtime"], props["Timeout"], props["MemorySize"], props["ReservedConcurrentExecutions"])
    assert (function.memory_mb, function.reserved_concurrency) == (256, 10)  # cdk.json: 256 MB, "auto" = 2 x 5
    assert (function.code_dir / "lambda_fn" / "handler.py").is_file()  # the staged zip's folder
    assert (function.code_dir / "sentiment").is_dir() and not (function.code_dir / "serving").exists()
    env = function.environment
    # The featurizer's S3 object is the file the template deploys there, in cdk.out.
    featurizer = Path(env["FEATURIZER_URI"])
    assert featurizer.is_file() and featurizer.parent.parent == model.path.parent
    assert Featurizer.load(featurizer).fingerprint == Featurizer.load(model_dir / "featurizer.json").fingerprint
    assert env["ENDPOINT_NAME"] == model.endpoint.name
    assert env["ALLOWED_ORIGINS"] == ADDRESSES.site_origin
    assert env["POWERTOOLS_SERVICE_NAME"] == "sentiment-api"
    runtime_venv = REPO_ROOT / f".venv-py{props['Runtime'].removeprefix('python')}" / "bin" / "python"
    if runtime_venv.exists():  # make install builds it: the function runs on its runtime's Python
        assert function.python == str(runtime_venv)
        assert f"python{function.python_version.rsplit('.', 1)[0]}" == props["Runtime"]


def test_the_endpoint_is_the_templates_model_and_image(model, tmp_path: Path) -> None:
    endpoint = model.endpoint
    assert endpoint.model_data.name == "model.tar.gz" and endpoint.variant == "current"
    with tarfile.open(endpoint.model_data) as archive:
        assert set(archive.getnames()) >= {"model.onnx", "featurizer.json"}
    assert (endpoint.code_dir / "serving" / "__main__.py").is_file()  # the image's build context
    assert (endpoint.code_dir / "sentiment").is_dir() and not (endpoint.code_dir / "lambda_fn").exists()


def test_the_website_is_the_distribution_with_its_headers_and_generated_config(model) -> None:
    site = model.website
    assert site.default_root_object == "index.html" and site.allowed_methods == ("GET", "HEAD")
    assert {"index.html", "app.js", "style.css", "favicon.svg", "config.json"} <= set(site.objects)
    assert json.loads(site.objects["config.json"].read()) == {"apiUrl": f"{ADDRESSES.api_origin}/prod/"}
    assert site.objects["index.html"].cache_control == "max-age=300"
    headers = {rule.name: rule.value for rule in site.headers}
    assert headers["Content-Security-Policy"].endswith("; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    assert f"connect-src 'self' {ADDRESSES.api_origin};" in headers["Content-Security-Policy"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "no-referrer"
    assert all(rule.override for rule in site.headers)


def test_what_cannot_be_emulated_is_named(model) -> None:
    named = "; ".join(model.not_emulated)
    for expected in ("X-Ray tracing", "CloudWatch alarms", "IAM roles (not enforced)", "the CloudWatch dashboard",
                     "access logs", "SageMaker serverless capacity", "CloudFront's HTTPS"):
        assert expected in named, expected
    assert "WAF" not in named  # its rate rule is emulated
    assert "SnapStart" in named and "published versions" in named


def test_the_function_runs_on_its_runtimes_python_when_there_is_one(tmp_path: Path, monkeypatch) -> None:
    """This interpreter for its own version; else make install's .venv-py<version>, checked; else this one."""
    import platform
    import sys

    from local_stack import template

    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert template.runtime_python(here) == (sys.executable, platform.python_version())
    monkeypatch.setattr(template, "REPO_ROOT", tmp_path)
    assert template.runtime_python("python3.99") == (sys.executable, platform.python_version())  # none there
    fake = tmp_path / ".venv-py3.99" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 3.99.2\n")
    fake.chmod(0o755)
    assert template.runtime_python("python3.99") == (str(fake), "3.99.2")
    fake.write_text("#!/bin/sh\necho 3.98.0\n")  # a virtualenv of another version is not taken
    assert template.runtime_python("python3.99") == (sys.executable, platform.python_version())
    fake.write_text("#!/bin/sh\nexit 3\n")  # nor a broken one
    assert template.runtime_python("python3.99") == (sys.executable, platform.python_version())


def test_a_resource_the_local_stack_does_not_know_is_named_not_dropped(fresh, read) -> None:
    fresh["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    fresh["Resources"]["OtherQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    assert "AWS::SQS::Queue x2" in read(fresh).not_emulated


def test_an_environment_value_only_known_once_deployed_is_named(fresh, read) -> None:
    function = real_function_id(fresh)
    fresh["Parameters"]["Secret"] = {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/app/secret"}
    fresh["Resources"][function]["Properties"]["Environment"]["Variables"]["SECRET"] = {"Ref": "Secret"}
    model = read(fresh)
    assert model.function().environment["SECRET"].startswith("<parameter Secret (SSM parameter /app/secret")
    assert any("SECRET" in note and "/app/secret" in note for note in model.not_emulated)


def test_an_s3_object_the_template_does_not_deploy_stays_an_s3_uri(fresh, read) -> None:
    function = real_function_id(fresh)
    fresh["Resources"][function]["Properties"]["Environment"]["Variables"]["FEATURIZER_URI"] = "s3://elsewhere/f.json"
    assert read(fresh).function().environment["FEATURIZER_URI"] == "s3://elsewhere/f.json"


def test_a_function_of_another_runtime_is_refused(fresh, read) -> None:
    fresh["Resources"][real_function_id(fresh)]["Properties"]["Runtime"] = "nodejs22.x"
    with pytest.raises(TemplateError, match="runtime 'nodejs22.x'.*Python zip functions only"):
        read(fresh)


# --- intrinsic functions ------------------------------------------------------------------------

def test_intrinsic_functions_resolve_as_cloudformation_does() -> None:
    template = {"Parameters": {"Env": {"Type": "String", "Default": "test"}},
                "Mappings": {"Sizes": {"test": {"memory": 512}}},
                "Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "my-bucket"}},
                              "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}}}}
    resolve = Resolver(template, "Stack").resolve
    assert resolve({"Fn::Sub": "${AWS::Region}/${Env}/${Bucket}/${Bucket.Arn}/${!Literal}"}) == (
        "us-east-1/test/my-bucket/arn:aws:s3:::my-bucket/${Literal}")
    assert resolve({"Fn::Sub": ["${x}-${Env}", {"x": {"Ref": "AWS::AccountId"}}]}) == "000000000000-test"
    assert resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}) == "b"
    assert resolve({"Fn::Join": ["-", ["a", {"Ref": "Api"}, {"Ref": "AWS::StackName"}]]}) == "a-api-Stack"
    assert resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "memory"]}) == 512
    assert resolve({"Fn::GetAtt": "Bucket.RegionalDomainName"}) == "my-bucket.s3.us-east-1.amazonaws.com"
    assert resolve(["a", {"Ref": "AWS::NoValue"}, "b"]) == ["a", "b"]
    with pytest.raises(TemplateError, match="'Missing', which is neither a parameter nor a resource"):
        resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError, match="index 5 is outside a list of 3"):
        resolve({"Fn::Select": [5, ["a", "b", "c"]]})


# --- malformed templates --------------------------------------------------------------------------

def test_a_missing_template_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist.*make demo.*npx cdk synth"):
        read_template(tmp_path / "cdk.out" / "ServerlessSentiment.template.json")


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a JSON CloudFormation template"),
    ("[1, 2]", "holds list, not an object"),
    (b"\xff\xfe", "is not a JSON CloudFormation template"),
])
def test_a_file_that_is_not_a_template_is_refused(tmp_path: Path, content, message) -> None:
    path = tmp_path / "Stack.template.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TemplateError, match=message):
        load_stack(path)


def test_a_template_without_resources_or_api_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no Resources object"):
        model_of({"Outputs": {}}, base_dir=tmp_path)
    with pytest.raises(TemplateError, match="one REST API .* the template has 0"):
        model_of({"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}, base_dir=tmp_path)


def test_two_apis_or_an_api_without_stage_are_refused(fresh, read) -> None:
    two = json.loads(json.dumps(fresh))
    two["Resources"]["Second"] = {"Type": "AWS::ApiGateway::RestApi", "Properties": {}}
    with pytest.raises(TemplateError, match="the template has 2"):
        read(two)
    for stage in [*of_type(fresh, "AWS::ApiGateway::Stage"), *of_type(fresh, "AWS::WAFv2::WebACLAssociation")]:
        del fresh["Resources"][stage]
    for deployment in list(of_type(fresh, "Custom::CDKBucketDeployment")):  # config.json names the stage's URL
        fresh["Resources"][deployment]["Properties"].pop("SourceMarkers", None)
    with pytest.raises(TemplateError, match="has no AWS::ApiGateway::Stage"):
        read(fresh)


def test_resources_in_a_cycle_are_refused(fresh, read) -> None:
    first, second = list(of_type(fresh, "AWS::ApiGateway::Resource"))[:2]
    fresh["Resources"][first]["Properties"]["ParentId"] = {"Ref": second}
    fresh["Resources"][second]["Properties"]["ParentId"] = {"Ref": first}
    with pytest.raises(TemplateError, match="form a cycle"):
        read(fresh)


def test_a_wrong_type_where_the_local_stack_reads_is_a_clear_error(fresh, read) -> None:
    fresh["Resources"][real_function_id(fresh)]["Properties"]["MemorySize"] = "lots"
    with pytest.raises(TemplateError, match="MemorySize: 'lots' is not a number"):
        read(fresh)
    broken = {"Resources": {"Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": []}}}
    with pytest.raises(TemplateError):
        model_of(broken, base_dir=".")


def test_a_missing_asset_says_to_synthesize_again(synthesized: Path, tmp_path: Path) -> None:
    copy = tmp_path / "cdk.out"
    shutil.copytree(synthesized.parent, copy, ignore=shutil.ignore_patterns("*.template.json"))
    shutil.copy(synthesized, copy)
    function = load_stack(copy / synthesized.name).function()
    shutil.rmtree(function.code_dir)
    digest = function.code_dir.name.removeprefix("asset.")
    with pytest.raises(TemplateError, match=f"function {function.logical_id}: asset .*{digest}.* is not in .*"
                                            "synthesize again"):
        load_stack(copy / synthesized.name)


def test_a_function_the_api_reaches_is_read_with_its_own_settings(fresh, read) -> None:
    function = add_function(fresh, "Faults", timeout=2, memory=512, reserved=3, environment={"MODE": "hostile"})
    add_route(fresh, "faults", lambda_integration(function, timeout_ms=1500))
    model = read(fresh)
    faults = model.function("Faults")
    assert (faults.handler, faults.timeout_s, faults.memory_mb, faults.reserved_concurrency) == (
        "faults.handler", 2, 512, 3)
    assert faults.environment == {"MODE": "hostile"}
    assert model.api.method("/faults", "GET").integration.timeout_ms == 1500
    with pytest.raises(TemplateError, match="integrates with 2 functions"):
        model.function()


def test_the_tiny_models_version_is_in_the_staged_metrics(model) -> None:
    metrics = model.endpoint.model_data.parent / "metrics.json"
    assert json.loads(metrics.read_text())["model_version"] == MODEL_VERSION
