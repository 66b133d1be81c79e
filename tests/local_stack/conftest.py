"""Template edits for the local stack's tests: what a CDK change would make the template say.

Each helper changes a template's JSON in place as synthesis would write it (resources, methods,
stages, functions), so a test can show the local stack following the template with no change to
``local_stack/``. The hostile function is ``handlers/faults.py`` (see its docstring).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_stack.template import model_of

HANDLERS = Path(__file__).resolve().parent / "handlers"


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def one(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = of_type(template, kind).items()
    return found


def api_id(template: dict[str, Any]) -> str:
    return one(template, "AWS::ApiGateway::RestApi")[0]


def real_function_id(template: dict[str, Any]) -> str:
    (found,) = [k for k, r in of_type(template, "AWS::Lambda::Function").items()
                if r["Properties"].get("Handler") == "lambda_fn.handler.lambda_handler"]
    return found


def add_function(template: dict[str, Any], logical_id: str, *, handler: str = "faults.handler",
                 code: Path = HANDLERS, timeout: float = 5, memory: int = 128, reserved: int | None = None,
                 environment: dict[str, Any] | None = None, runtime: str = "python3.11") -> str:
    """A Lambda function whose code is ``code`` (as CDK stages an asset: the metadata names its folder)."""
    props: dict[str, Any] = {"Handler": handler, "Runtime": runtime, "Timeout": timeout, "MemorySize": memory,
                             "Code": {"S3Bucket": "assets", "S3Key": "local.zip"},
                             "Role": "arn:aws:iam::000000000000:role/faults"}
    if reserved is not None:
        props["ReservedConcurrentExecutions"] = reserved
    if environment:
        props["Environment"] = {"Variables": environment}
    template["Resources"][logical_id] = {"Type": "AWS::Lambda::Function", "Properties": props,
                                         "Metadata": {"aws:asset:path": str(code)}}
    return logical_id


def lambda_integration(function_id: str, timeout_ms: int | None = None) -> dict[str, Any]:
    integration: dict[str, Any] = {
        "Type": "AWS_PROXY", "IntegrationHttpMethod": "POST",
        "Uri": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"},
                                  ":lambda:path/2015-03-31/functions/", {"Fn::GetAtt": [function_id, "Arn"]},
                                  "/invocations"]]}}
    if timeout_ms is not None:
        integration["TimeoutInMillis"] = timeout_ms
    return integration


def add_route(template: dict[str, Any], path: str, integration: dict[str, Any], method: str = "ANY") -> str:
    """Resources for each segment of ``path`` (reusing existing ones) and a method on the last."""
    api = api_id(template)
    parent: Any = {"Fn::GetAtt": [api, "RootResourceId"]}
    for segment in path.strip("/").split("/"):
        existing = [k for k, r in of_type(template, "AWS::ApiGateway::Resource").items()
                    if r["Properties"]["ParentId"] == parent and r["Properties"]["PathPart"] == segment]
        if existing:
            resource_id = existing[0]
        else:
            resource_id = "Route" + "".join(c for c in path.title() if c.isalnum()) + str(len(template["Resources"]))
            template["Resources"][resource_id] = {"Type": "AWS::ApiGateway::Resource", "Properties": {
                "ParentId": parent, "PathPart": segment, "RestApiId": {"Ref": api}}}
        parent = {"Ref": resource_id}
    method_id = f"{parent['Ref']}{method}"
    template["Resources"][method_id] = {"Type": "AWS::ApiGateway::Method", "Properties": {
        "AuthorizationType": "NONE", "HttpMethod": method, "ResourceId": parent, "RestApiId": {"Ref": api},
        "Integration": integration}}
    return method_id


def mock_integration(status: int, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"Type": "MOCK", "RequestTemplates": {"application/json": json.dumps({"statusCode": status})},
            "IntegrationResponses": [{"StatusCode": str(status), "ResponseTemplates": {"application/json": body},
                                      "ResponseParameters": {f"method.response.header.{k}": f"'{v}'"
                                                             for k, v in (headers or {}).items()}}]}


def remove_route(template: dict[str, Any], path_part: str, parent_is_root: bool = True) -> None:
    """Delete a resource directly under the root (and its methods)."""
    api = api_id(template)
    resources = {k for k, r in of_type(template, "AWS::ApiGateway::Resource").items()
                 if r["Properties"]["PathPart"] == path_part
                 and (not parent_is_root or r["Properties"]["ParentId"] == {"Fn::GetAtt": [api, "RootResourceId"]})}
    for logical_id in list(template["Resources"]):
        resource = template["Resources"][logical_id]
        if logical_id in resources or (resource["Type"] == "AWS::ApiGateway::Method"
                                       and resource["Properties"]["ResourceId"] in [{"Ref": r} for r in resources]):
            del template["Resources"][logical_id]


def add_stage(template: dict[str, Any], name: str, *, throttle: tuple[float, int] | None = None,
              method_settings: list[dict[str, Any]] | None = None, variables: dict[str, str] | None = None) -> str:
    """Another stage of the API's deployment."""
    deployment = next(iter(of_type(template, "AWS::ApiGateway::Deployment")))
    settings = list(method_settings or [])
    if throttle is not None:
        settings.append({"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": throttle[0],
                         "ThrottlingBurstLimit": throttle[1]})
    logical_id = f"Stage{name.title()}"
    template["Resources"][logical_id] = {"Type": "AWS::ApiGateway::Stage", "Properties": {
        "RestApiId": {"Ref": api_id(template)}, "DeploymentId": {"Ref": deployment}, "StageName": name,
        "MethodSettings": settings, **({"Variables": variables} if variables else {})}}
    return logical_id


def add_firewall(template: dict[str, Any], stage_id: str, name: str, *, limit: int | None = None,
                 custom_429: bool = True, default_block: bool = False) -> str:
    """A web ACL on ``stage_id``: a per-IP rate rule (its 429 as the default template's, or none), or Block all."""
    acl = template["Resources"].get(next((k for k in of_type(template, "AWS::WAFv2::WebACL") if not k.startswith("Acl")),
                                         ""))  # the synthesized one: its 429 is the one to copy
    rules = []
    if limit is not None:
        action: dict[str, Any] = {"Block": {}}
        if custom_429:
            action = json.loads(json.dumps(acl["Properties"]["Rules"][0]["Action"]))
        rules.append({"Name": f"{name}Rate", "Priority": 0, "Action": action,
                      "Statement": {"RateBasedStatement": {"AggregateKeyType": "IP", "Limit": limit,
                                                           "EvaluationWindowSec": 300}},
                      "VisibilityConfig": {"CloudWatchMetricsEnabled": False, "MetricName": name,
                                           "SampledRequestsEnabled": False}})
    acl_id = f"Acl{name}"
    template["Resources"][acl_id] = {"Type": "AWS::WAFv2::WebACL", "Properties": {
        "Scope": "REGIONAL", "DefaultAction": {"Block": {}} if default_block else {"Allow": {}},
        "CustomResponseBodies": acl["Properties"]["CustomResponseBodies"] if acl else {}, "Rules": rules,
        "VisibilityConfig": {"CloudWatchMetricsEnabled": False, "MetricName": name, "SampledRequestsEnabled": False}}}
    template["Resources"][f"{acl_id}Association"] = {"Type": "AWS::WAFv2::WebACLAssociation", "Properties": {
        "WebACLArn": {"Fn::GetAtt": [acl_id, "Arn"]},
        "ResourceArn": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"},
                                          "::/restapis/", {"Ref": api_id(template)}, "/stages/", {"Ref": stage_id}]]}}}
    return acl_id


@pytest.fixture(scope="session")
def template_json(synthesized: Path) -> dict[str, Any]:
    """The synthesized template's JSON (a fresh copy per use: ``json.loads(json.dumps(...))``)."""
    return json.loads(synthesized.read_text())


@pytest.fixture
def fresh(template_json):
    """A deep copy of the synthesized template to change."""
    return json.loads(json.dumps(template_json))


@pytest.fixture
def read(synthesized: Path):
    """``local_stack.template.model_of`` on a template dict, its assets those of the synthesis."""
    def read_model(data, **kwargs):
        return model_of(data, base_dir=synthesized.parent, **kwargs)
    return read_model
