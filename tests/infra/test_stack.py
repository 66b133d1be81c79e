"""The synthesized template: every resource of the service with its key properties, both modes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from aws_cdk.assertions import Match

from infra.packaging import image_python

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_VERSION = "20261128T1810Z-3f2a9c1d"  # what the conftest's fake training output says
PREFIX = f"models/{MODEL_VERSION}/"

# A "*" resource is allowed only for actions that AWS does not let you scope to a resource.
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken",  # the registry token is account-wide (SageMaker pulls the image)
    "cloudwatch:PutMetricData",  # no resource-level permissions; limited by namespace condition
    "xray:PutTraceSegments",  # X-Ray tracing of the Lambda function
    "xray:PutTelemetryRecords",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def flat(value: Any) -> str:
    """A template fragment as text, so a token-built string can be searched for its parts."""
    return json.dumps(value, sort_keys=True)


def render(value: Any) -> str:
    """A CloudFormation string as text: Fn::Join is joined, Ref and GetAtt become ${Name}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return "${%s}" % value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${%s}" % ".".join(value["Fn::GetAtt"])
    return "${%s}" % flat(value)


def allow_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Allow statement of every identity and resource policy in the template."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [props["PolicyDocument"]] if "PolicyDocument" in props else []
        documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            for statement in as_list(document["Statement"]):
                if statement["Effect"] == "Allow":
                    yield name, statement


# --- IAM -----------------------------------------------------------------------------------------

def test_no_wildcard_action_and_no_star_resource_beyond_the_named_exceptions(serverless, instance,
                                                                            everything) -> None:
    for synth in (serverless, instance, everything):
        statements = list(allow_statements(synth.json))
        assert len(statements) > 10
        for name, statement in statements:
            for action in as_list(statement.get("Action", [])):
                assert action != "*" and not action.endswith(":*"), f"{name} allows {action}"
            assert "NotAction" not in statement and "NotResource" not in statement, name
            assert statement.get("Principal") not in ("*", {"AWS": "*"}), f"{name} allows everyone"
            if "*" in as_list(statement.get("Resource", [])):
                extra = set(as_list(statement["Action"])) - STAR_RESOURCE_ACTIONS
                assert not extra, f"{name} grants {sorted(extra)} on '*'"


def test_metrics_on_star_are_limited_to_sagemakers_namespace(serverless) -> None:
    statements = [s for _, s in allow_statements(serverless.json)
                  if "cloudwatch:PutMetricData" in as_list(s["Action"])]
    assert statements and all(
        s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}}
        for s in statements)


def test_sagemaker_role_reads_only_its_model_and_pulls_only_its_image(serverless) -> None:
    role = serverless.template.find_resources("AWS::IAM::Role", {"Properties": {
        "AssumeRolePolicyDocument": {"Statement": [Match.object_like(
            {"Principal": {"Service": "sagemaker.amazonaws.com"}})]}}})
    assert len(role) == 1 and "ManagedPolicyArns" not in next(iter(role.values()))["Properties"]
    (role_id,) = role
    policy = next(p for p in serverless.resources("AWS::IAM::Policy").values()
                  if {"Ref": role_id} in p["Properties"]["Roles"])
    grants = {action: statement["Resource"]
              for statement in policy["Properties"]["PolicyDocument"]["Statement"]
              for action in as_list(statement["Action"])}
    assert render(grants.pop("s3:GetObject")).endswith(f"/{PREFIX}model.tar.gz")
    for action in ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"):
        assert "container-assets" in flat(grants.pop(action))
    assert grants.pop("ecr:GetAuthorizationToken") == "*"
    assert grants.pop("cloudwatch:PutMetricData") == "*"
    for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                   "logs:DescribeLogStreams"):
        assert render(grants.pop(action)).endswith(":log-group:/aws/sagemaker/Endpoints/*")
    assert grants == {}


def test_function_role_invokes_one_endpoint_and_reads_one_file(serverless) -> None:
    function = serverless.template.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "lambda_fn.handler.lambda_handler"}})
    (props,) = [f["Properties"] for f in function.values()]
    role_id = props["Role"]["Fn::GetAtt"][0]
    role = serverless.json["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role  # no AWSLambdaBasicExecutionRole: logs are scoped below
    policy = next(p for p in serverless.resources("AWS::IAM::Policy").values()
                  if {"Ref": role_id} in p["Properties"]["Roles"])
    grants = {action: statement["Resource"]
              for statement in policy["Properties"]["PolicyDocument"]["Statement"]
              for action in as_list(statement["Action"])}
    endpoint_id = next(iter(serverless.resources("AWS::SageMaker::Endpoint")))
    assert grants.pop("sagemaker:InvokeEndpoint") == {"Ref": endpoint_id}  # Ref is the endpoint ARN
    assert render(grants.pop("s3:GetObject")).endswith(f"/{PREFIX}featurizer.json")
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert grants.pop("logs:CreateLogStream") == grants.pop("logs:PutLogEvents") == {
        "Fn::GetAtt": [log_group, "Arn"]}
    assert grants.pop("xray:PutTraceSegments") == grants.pop("xray:PutTelemetryRecords") == "*"
    assert grants == {}


# --- Buckets and the model upload ---------------------------------------------------------------

def test_every_bucket_is_private_encrypted_and_ssl_only(serverless) -> None:
    buckets = serverless.resources("AWS::S3::Bucket")
    assert len(buckets) == 3  # artifacts, website, access logs
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True}, name
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", name
        assert "BucketName" not in props, f"{name} has a physical name"
        assert bucket["DeletionPolicy"] == "Retain", name
        serverless.template.has_resource_properties("AWS::S3::BucketPolicy", {
            "Bucket": {"Ref": name},
            "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
                "Effect": "Deny", "Action": "s3:*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


def access_log_bucket(synth) -> dict[str, Any]:
    (bucket,) = [b["Properties"] for b in synth.resources("AWS::S3::Bucket").values()
                 if b["Properties"].get("OwnershipControls", {}).get("Rules") == [
                     {"ObjectOwnership": "ObjectWriter"}]]
    return bucket


def test_access_logs_expire(serverless, instance) -> None:
    for synth, days in ((serverless, 90), (instance, 30)):
        rules = access_log_bucket(synth)["LifecycleConfiguration"]["Rules"]
        assert rules == [{"ExpirationInDays": days, "Id": "ExpireAccessLogs", "Status": "Enabled"}]
        others = [b["Properties"] for b in synth.resources("AWS::S3::Bucket").values()]
        assert sum("LifecycleConfiguration" in b for b in others) == 1  # model versions are kept


def test_artifacts_bucket_is_versioned_and_logged(serverless) -> None:
    serverless.template.has_resource_properties("AWS::S3::Bucket", {
        "VersioningConfiguration": {"Status": "Enabled"},
        "LoggingConfiguration": {"DestinationBucketName": Match.any_value(),
                                 "LogFilePrefix": "artifacts-bucket/"}})


def test_training_output_is_uploaded_under_its_version(serverless) -> None:
    (upload,) = [r["Properties"] for r in serverless.resources("Custom::CDKBucketDeployment").values()
                 if r["Properties"].get("DestinationBucketKeyPrefix") == PREFIX]
    assert upload["RetainOnDelete"] is True  # old versions stay for the endpoint still serving them
    (key,) = upload["SourceObjectKeys"]
    staged = serverless.asset_dir(key.removesuffix(".zip"))
    assert sorted(p.name for p in staged.iterdir()) == [
        "featurizer.json", "metrics.json", "model.onnx", "model.tar.gz"]  # no plots, no checkpoints


def test_model_data_and_featurizer_point_at_the_uploaded_version(serverless) -> None:
    model = serverless.one("AWS::SageMaker::Model")["Properties"]
    url = render(model["PrimaryContainer"]["ModelDataUrl"])
    assert url.startswith("s3://") and url.endswith(f"/{PREFIX}model.tar.gz")
    assert "DestinationBucketArn" in url  # the bucket as the upload reports it: waits for it
    function = serverless.template.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "lambda_fn.handler.lambda_handler"}})
    env = next(iter(function.values()))["Properties"]["Environment"]["Variables"]
    uri = render(env["FEATURIZER_URI"])
    assert uri.startswith("s3://") and uri.endswith(f"/{PREFIX}featurizer.json")


# --- SageMaker ---------------------------------------------------------------------------------

def test_serverless_endpoint(serverless) -> None:
    serverless.template.resource_count_is("AWS::SageMaker::Model", 1)
    serverless.template.resource_count_is("AWS::SageMaker::Endpoint", 1)
    serverless.template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
    config = serverless.one("AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant


def test_serverless_provisioned_concurrency_keeps_invocations_warm(synthesize_with) -> None:
    synth = synthesize_with(serverless_provisioned_concurrency="2")
    (variant,) = synth.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5, "ProvisionedConcurrency": 2}


def test_no_physical_names_so_cloudformation_can_replace(serverless, instance, everything) -> None:
    for synth in (serverless, instance, everything):
        for model in synth.resources("AWS::SageMaker::Model").values():
            assert "ModelName" not in model["Properties"]
        assert "EndpointConfigName" not in synth.one("AWS::SageMaker::EndpointConfig")["Properties"]
        assert "EndpointName" not in synth.one("AWS::SageMaker::Endpoint")["Properties"]
        for function in synth.resources("AWS::Lambda::Function").values():
            assert "FunctionName" not in function["Properties"]
        for role in synth.resources("AWS::IAM::Role").values():
            assert "RoleName" not in role["Properties"]
        for topic in synth.resources("AWS::SNS::Topic").values():
            assert "TopicName" not in topic["Properties"]


def test_model_uses_the_serving_image_built_for_x86(serverless) -> None:
    model = serverless.one("AWS::SageMaker::Model")
    assert "container-assets" in flat(model["Properties"]["PrimaryContainer"]["Image"])
    assert any("DefaultPolicy" in dep for dep in model["DependsOn"])  # permissions exist first
    (image,) = serverless.assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "serving/Dockerfile"
    assert image["source"]["platform"] == "linux/amd64"
    context = serverless.outdir / image["source"]["directory"]
    assert (context / "serving" / "Dockerfile").is_file()
    assert (context / "requirements" / "serving.txt").is_file()
    assert (context / "sentiment" / "featurizer.py").is_file()
    assert sorted(p.name for p in context.iterdir()) == ["requirements", "sentiment", "serving"]
    assert [p.name for p in (context / "requirements").iterdir()] == ["serving.txt"]
    assert not list(context.rglob("__pycache__"))


def test_instance_models_are_network_isolated_where_sagemaker_allows_it(serverless, instance,
                                                                       everything) -> None:
    """The container reads nothing but its mounted model: no network at all (instance mode).

    SageMaker serverless endpoints do not support network isolation (feature exclusions).
    """
    assert "EnableNetworkIsolation" not in serverless.one("AWS::SageMaker::Model")["Properties"]
    assert instance.one("AWS::SageMaker::Model")["Properties"]["EnableNetworkIsolation"] is True
    models = everything.resources("AWS::SageMaker::Model").values()
    assert len(models) == 2 and all(m["Properties"]["EnableNetworkIsolation"] is True for m in models)


def test_instance_endpoint_with_target_tracking(instance) -> None:
    (variant,) = instance.one("AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert variant["InstanceType"] == "ml.m5.large"
    assert variant["InitialInstanceCount"] == 2
    assert "ServerlessConfig" not in variant
    target = instance.one("AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    endpoint_id = next(iter(instance.resources("AWS::SageMaker::Endpoint")))
    assert render(target["ResourceId"]) == f"endpoint/${{{endpoint_id}.EndpointName}}/variant/current"
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in flat(target["RoleARN"])
    instance.template.has_resource_properties("AWS::ApplicationAutoScaling::ScalingPolicy", {
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "TargetValue": 150}})


def test_destroy_on_delete_empties_and_deletes_buckets_and_logs(instance) -> None:
    for kind in ("AWS::S3::Bucket", "AWS::Logs::LogGroup"):
        for name, resource in instance.resources(kind).items():
            assert resource["DeletionPolicy"] == "Delete", name
    assert len(instance.resources("Custom::S3AutoDeleteObjects")) == 3


# --- Lambda ------------------------------------------------------------------------------------

def predict_function(synth) -> dict[str, Any]:
    found = synth.template.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "lambda_fn.handler.lambda_handler"}})
    assert len(found) == 1
    return next(iter(found.values()))["Properties"]


def test_function_runtime_architecture_timeout_and_tracing(serverless) -> None:
    props = predict_function(serverless)
    assert props["Runtime"] == "python3.12"
    # The serving image's Python, the one make test runs the handler's and the server's tests on.
    assert props["Runtime"] == f"python{image_python(REPO_ROOT)}"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] == 28  # under API Gateway's 29 s, over the endpoint calls' 27 s
    assert props["MemorySize"] == 256
    assert props["TracingConfig"] == {"Mode": "Active"}


def test_function_concurrency_is_reserved_from_the_endpoints_by_default(serverless, instance,
                                                                         everything) -> None:
    """Twice what the endpoint serves at once, so a flood cannot take the account's whole pool."""
    assert predict_function(serverless)["ReservedConcurrentExecutions"] == 2 * 5  # max concurrency 5
    assert predict_function(instance)["ReservedConcurrentExecutions"] == 5  # set with -c
    # Two variants of at most 2 instances, 4 requests in flight each (the image's 2 workers x 2 threads).
    assert predict_function(everything)["ReservedConcurrentExecutions"] == 2 * 2 * 2 * 4


def test_function_environment(serverless) -> None:
    env = predict_function(serverless)["Environment"]["Variables"]
    endpoint_id = next(iter(serverless.resources("AWS::SageMaker::Endpoint")))
    distribution_id = next(iter(serverless.resources("AWS::CloudFront::Distribution")))
    assert env["ENDPOINT_NAME"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
    assert render(env["ALLOWED_ORIGINS"]) == f"https://${{{distribution_id}.DomainName}}"
    assert env["POWERTOOLS_SERVICE_NAME"] and env["LOG_LEVEL"] == "INFO"


def test_function_log_group_has_retention(serverless) -> None:
    log_group = predict_function(serverless)["LoggingConfig"]["LogGroup"]["Ref"]
    assert serverless.json["Resources"][log_group]["Properties"]["RetentionInDays"] == 30


def test_function_zip_holds_the_lambda_fn_and_sentiment_folders_only(serverless) -> None:
    code = predict_function(serverless)["Code"]
    staged = serverless.asset_dir(code["S3Key"].removesuffix(".zip"))
    assert sorted(p.name for p in staged.iterdir()) == ["lambda_fn", "sentiment"]
    for folder in ("lambda_fn", "sentiment"):
        expected = sorted(p.name for p in (REPO_ROOT / folder).iterdir() if p.name != "__pycache__")
        assert sorted(p.name for p in (staged / folder).iterdir()) == expected
    assert (staged / "lambda_fn" / "handler.py").is_file() and (staged / "sentiment" / "featurizer.py").is_file()


def test_powertools_layer_for_the_pinned_version(serverless, instance) -> None:
    pinned = next(line.split("==")[1].strip()
                  for line in (REPO_ROOT / "requirements" / "lambda.txt").read_text().splitlines()
                  if line.startswith("aws-lambda-powertools=="))
    (layer,) = predict_function(serverless)["Layers"]
    parameter = serverless.json["Parameters"][layer["Ref"]]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == f"/aws/service/powertools/python/arm64/python3.12/{pinned}"
    (pinned_layer,) = predict_function(instance)["Layers"]
    assert pinned_layer == {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:017000801446:layer:"
                                       "AWSLambdaPowertoolsPythonV3-python312-arm64:40"}
    assert predict_function(instance)["ReservedConcurrentExecutions"] == 5


# --- API Gateway -------------------------------------------------------------------------------

def test_predict_is_a_lambda_proxy(serverless) -> None:
    """Every method goes to the function (routes and preflight in detail: test_api_contract.py)."""
    serverless.template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "predict"})
    serverless.template.has_resource_properties("AWS::ApiGateway::Method", {
        "HttpMethod": "ANY",
        "AuthorizationType": "NONE",
        "Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST"}})


def test_stage_throttling_tracing_and_json_access_logs(serverless) -> None:
    stage = serverless.one("AWS::ApiGateway::Stage")["Properties"]
    assert stage["TracingEnabled"] is True
    (settings,) = stage["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (10, 20)
    assert settings["LoggingLevel"] == "ERROR" and settings["DataTraceEnabled"] is False
    log_format = json.loads(stage["AccessLogSetting"]["Format"])
    assert {"requestId", "ip", "status", "latencyMs"} <= set(log_format)
    destination = render(stage["AccessLogSetting"]["DestinationArn"])
    (log_group,) = [name for name in serverless.resources("AWS::Logs::LogGroup")
                    if destination.endswith(f":log-group:${{{name}}}")]
    assert serverless.json["Resources"][log_group]["Properties"]["RetentionInDays"] == 30
    serverless.template.resource_count_is("AWS::ApiGateway::Account", 1)  # the logging role


# --- Website -----------------------------------------------------------------------------------

def test_distribution_serves_the_private_bucket_over_https(serverless) -> None:
    config = serverless.one("AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    (origin,) = config["Origins"]
    assert "OriginAccessControlId" in origin
    assert config["Logging"]["Prefix"] == "cloudfront/"
    serverless.template.has_resource_properties("AWS::CloudFront::OriginAccessControl", {
        "OriginAccessControlConfig": Match.object_like({"OriginAccessControlOriginType": "s3",
                                                        "SigningBehavior": "always"})})


def test_security_headers(serverless) -> None:
    headers = serverless.one("AWS::CloudFront::ResponseHeadersPolicy")["Properties"][
        "ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    api_id = next(iter(serverless.resources("AWS::ApiGateway::RestApi")))
    csp = render(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]).split("; ")
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert f"connect-src 'self' https://${{{api_id}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}" in csp
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"


def test_page_and_generated_config_are_published(serverless) -> None:
    (publish,) = [r["Properties"] for r in serverless.resources("Custom::CDKBucketDeployment").values()
                  if "DestinationBucketKeyPrefix" not in r["Properties"]]
    page_key, config_key = publish["SourceObjectKeys"]
    page = serverless.asset_dir(page_key.removesuffix(".zip"))
    assert (page / "index.html").read_text() == (REPO_ROOT / "web" / "index.html").read_text()
    config = (serverless.asset_dir(config_key.removesuffix(".zip")) / "config.json").read_text()
    # The API URL is only known at deploy time: the file holds a marker the deployment replaces.
    ((marker, url),) = publish["SourceMarkers"][1].items()
    assert config == '{"apiUrl":%s}' % marker
    api_id = next(iter(serverless.resources("AWS::ApiGateway::RestApi")))
    assert render(url).startswith(f'"https://${{{api_id}}}.execute-api.') and render(url).endswith('/"')
    assert publish["SystemMetadata"] == {"cache-control": "max-age=300"}


# --- Outputs -----------------------------------------------------------------------------------

def test_outputs(serverless) -> None:
    outputs = serverless.json["Outputs"]
    assert {"ApiUrl", "WebsiteUrl", "EndpointName", "ArtifactsBucketName"} <= set(outputs)
    api_id = next(iter(serverless.resources("AWS::ApiGateway::RestApi")))
    assert render(outputs["ApiUrl"]["Value"]).startswith(f"https://${{{api_id}}}.execute-api.")
    assert outputs["EndpointName"]["Value"]["Fn::GetAtt"][1] == "EndpointName"
    assert outputs["ArtifactsBucketName"]["Value"]["Ref"] in serverless.resources("AWS::S3::Bucket")
    distribution_id = next(iter(serverless.resources("AWS::CloudFront::Distribution")))
    assert render(outputs["WebsiteUrl"]["Value"]) == f"https://${{{distribution_id}.DomainName}}"


# --- SnapStart, versions and the alias --------------------------------------------------------------

def live_alias(synth) -> tuple[str, dict[str, Any]]:
    (found,) = synth.resources("AWS::Lambda::Alias").items()
    return found[0], found[1]["Properties"]


def test_snapstart_on_a_published_version_behind_the_live_alias(serverless) -> None:
    function_id = serverless.logical_id("AWS::Lambda::Function", "ApiFunction")
    assert predict_function(serverless)["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    (version_id, version), = serverless.resources("AWS::Lambda::Version").items()
    assert version["Properties"]["FunctionName"] == {"Ref": function_id}
    assert version["DeletionPolicy"] == "Delete"  # each kept version would keep a billed snapshot
    alias_id, alias = live_alias(serverless)
    assert alias["Name"] == "live"
    assert alias["FunctionName"] == {"Ref": function_id}
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    assert "ProvisionedConcurrencyConfig" not in alias


def test_api_gateway_invokes_the_alias_only(serverless) -> None:
    alias_id, _ = live_alias(serverless)
    methods = serverless.resources("AWS::ApiGateway::Method").values()
    uris = [serverless.render(m["Properties"]["Integration"]["Uri"]) for m in methods
            if m["Properties"]["Integration"]["Type"] == "AWS_PROXY"]
    assert len(uris) == 4  # ANY on /, /predict and their {proxy+}
    assert all(f"/functions/${{{alias_id}}}/invocations" in uri for uri in uris), uris
    targets = {json.dumps(p["Properties"]["FunctionName"]) for p in
               serverless.resources("AWS::Lambda::Permission").values()
               if p["Properties"]["Principal"] == "apigateway.amazonaws.com"}
    assert targets == {json.dumps({"Ref": alias_id})}


def test_snapstart_can_be_turned_off_for_provisioned_concurrency(synthesize_with) -> None:
    synth = synthesize_with(lambda_snapstart="false", lambda_provisioned_concurrency="3")
    assert "SnapStart" not in predict_function(synth)
    _, alias = live_alias(synth)
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 3}
    off = synthesize_with(lambda_snapstart="false")
    assert "SnapStart" not in predict_function(off)
    assert "ProvisionedConcurrencyConfig" not in live_alias(off)[1]
