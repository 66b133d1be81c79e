"""POST /predict: API Gateway (REST) → the lambda_fn handler → the SageMaker endpoint."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Acknowledgment, Annotations, Aws, Duration, Fn, IgnoreMode, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.config import Settings
from infra.gateway_responses import GATEWAY_ERRORS, JSON, RATE_LIMIT_WINDOW_S, RATE_LIMITED, GatewayError
from infra.packaging import LAMBDA_FOLDERS, only
from infra.storage import removal_policy

# SnapStart needs Python 3.12 or later; 3.12 is also the Python the tests run the handler on
# (README, "Tested on the Pythons it runs on").
RUNTIME = lambda_.Runtime.PYTHON_3_12
ALIAS = "live"  # what API Gateway invokes: the version the last deploy published
POWERTOOLS_ACCOUNT = "017000801446"  # AWS's account publishing the Powertools layers
HANDLER = "lambda_fn.handler.lambda_handler"
SERVICE_NAME = "sentiment-api"  # POWERTOOLS_SERVICE_NAME: the service dimension of the function's metrics
METRICS_NAMESPACE = "ServerlessSentiment"  # POWERTOOLS_METRICS_NAMESPACE: where the function's metrics go
# API Gateway gives up after 29 s; the function must answer (with a clear error) before that. Its
# endpoint calls take at most 27 s (lambda_fn/endpoint.py), the rest of its work well under 1 s.
LAMBDA_TIMEOUT = Duration.seconds(28)


def powertools_version(repo_root: Path) -> str:
    """The aws-lambda-powertools version pinned for the Lambda in requirements/lambda.txt."""
    requirements = repo_root / "requirements" / "lambda.txt"
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        pins = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if canonicalize_name(requirement.name) == "aws-lambda-powertools" and len(pins) == 1:
            return pins[0]
    raise ValueError(f"{requirements} must pin aws-lambda-powertools==<version>")


def powertools_layer_arn(scope: Construct, repo_root: Path, layer_version: int | None) -> str:
    """The ARN of AWS's Powertools layer for this runtime on arm64, in the stack's region.

    By default it is read at deploy time from the public SSM parameter that AWS keeps for the
    exact library version the tests ran against; ``layer_version`` pins a layer number instead.
    """
    python = RUNTIME.name.replace("python", "").replace(".", "")  # "python3.12" -> "312"
    if layer_version is not None:
        return Fn.sub(f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:{POWERTOOLS_ACCOUNT}:layer:"
                      f"AWSLambdaPowertoolsPythonV3-python{python}-arm64:{layer_version}")
    return ssm.StringParameter.value_for_string_parameter(
        scope, f"/aws/service/powertools/python/arm64/{RUNTIME.name}/{powertools_version(repo_root)}")


class PredictApi(Construct):
    """The Lambda function and the REST API in front of it, with a firewall limiting each client.

    Every method of every path is a proxy to the function, so README's answers are the
    function's own: 404 for another path, 405 with ``Allow`` for another method on /predict,
    CORS preflights from its allowlist with its Max-Age (one implementation of CORS; a MOCK
    preflight would be a second allowlist and Max-Age to keep in step, and API Gateway's own
    answer to a route it lacks is a 403 "Missing Authentication Token"). The price is one
    short invocation per preflight, which browsers cache for the Max-Age.
    """

    def __init__(self, scope: Construct, construct_id: str, *, repo_root: Path, settings: Settings,
                 endpoint_name: str, endpoint_arn: str, featurizer_uri: str, featurizer_arn: str) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        removal = removal_policy(settings.destroy_on_delete)

        function_logs = logs.LogGroup(self, "FunctionLogs", retention=settings.log_retention,
                                      removal_policy=removal)
        # An explicit role instead of the AWSLambdaBasicExecutionRole managed policy, whose
        # logs permissions cover every log group in the account.
        role = iam.Role(self, "FunctionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description="Predict function: invoke one endpoint, read one featurizer file.")
        function_logs.grant_write(role)
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:InvokeEndpoint"],
                                               resources=[endpoint_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[featurizer_arn]))

        self.function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(repo_root), exclude=only(LAMBDA_FOLDERS),
                                         ignore_mode=IgnoreMode.DOCKER),
            layers=[lambda_.LayerVersion.from_layer_version_arn(
                self, "Powertools", powertools_layer_arn(self, repo_root,
                                                         settings.powertools_layer_version))],
            memory_size=settings.lambda_memory_mb,
            timeout=LAMBDA_TIMEOUT,
            # A cap tied to the endpoint's concurrency, so a flood cannot drain the account's pool
            # (see infra/config.py; `none` for accounts whose quota leaves nothing to reserve).
            reserved_concurrent_executions=settings.reserved_concurrency,
            role=role,
            log_group=function_logs,
            tracing=lambda_.Tracing.ACTIVE,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if settings.lambda_snapstart else None,
            # Each version published with SnapStart keeps a snapshot, billed while it exists: the
            # version a deploy replaces is deleted (a rollback is a deploy of the older model).
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY),
            description="POST /predict: validate, featurize, invoke the SageMaker endpoint.",
            environment={
                "ENDPOINT_NAME": endpoint_name,
                "FEATURIZER_URI": featurizer_uri,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "LOG_LEVEL": "INFO",
            },
        )
        Validations.of(self.function).acknowledge(Acknowledgment(
            id="AwsSolutions-L1",
            reason=f"{RUNTIME.name} is the Python make test runs the handler on (and a SnapStart runtime); "
                   "it moves to a newer one together with the tests' interpreter and the serving image."))
        # The alias below publishes a version on every deploy that changes the function.
        Annotations.of(self.function).acknowledge_warning(
            "@aws-cdk/aws-lambda:snapStartRequirePublish", "the live alias invokes a published version")
        self.alias = lambda_.Alias(
            self, "Live", alias_name=ALIAS, version=self.function.current_version,
            provisioned_concurrent_executions=settings.lambda_provisioned_concurrency or None,
            description="The version API Gateway invokes: published by the last deploy.")
        # Tracing adds xray:PutTraceSegments/PutTelemetryRecords, which AWS only grants on "*".
        Validations.of(role).acknowledge(Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason="X-Ray's PutTraceSegments and PutTelemetryRecords accept no resource ARN."))

        access_logs = logs.LogGroup(self, "AccessLogs", retention=settings.log_retention,
                                    removal_policy=removal)
        self.api = apigw.RestApi(
            self, "Api",
            # CloudWatch tells REST APIs apart by name only: the stack's name keeps this API's
            # metrics (and the alarms on them) apart from any other API of the account.
            rest_api_name=f"{Stack.of(self).stack_name}-api",
            description="Movie review sentiment: POST /predict.",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Logging needs the account-level API Gateway → CloudWatch role; create it.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name="prod",
                throttling_rate_limit=settings.api_rate_limit,
                throttling_burst_limit=settings.api_burst_limit,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps({
                    "requestId": "$context.requestId",
                    "ip": "$context.identity.sourceIp",
                    "requestTime": "$context.requestTime",
                    "method": "$context.httpMethod",
                    "path": "$context.resourcePath",
                    "status": "$context.status",
                    "responseLength": "$context.responseLength",
                    "latencyMs": "$context.responseLatency",
                    "integrationLatencyMs": "$context.integration.latency",
                    "integrationStatus": "$context.integration.status",
                    "error": "$context.error.message",
                    "xrayTraceId": "$context.xrayTraceId",
                })),
            ),
        )
        self.api.node.try_remove_child("Endpoint")  # RestApi's own URL output; the stack names it ApiUrl
        # One integration for every route; each method gets a permission scoped to its own path
        # on this API's stage (no test-invoke permission).
        integration = apigw.LambdaIntegration(self.alias, allow_test_invoke=False)
        self.api.root.add_method("ANY", integration)
        self.predict = self.api.root.add_resource("predict")
        self.predict.add_method("ANY", integration)
        # A greedy {proxy+} per literal resource: API Gateway does not hand /predict/x, which
        # matched /predict, to a {proxy+} higher up.
        self.predict.add_proxy(default_integration=integration, any_method=True)
        self.api.root.add_proxy(default_integration=integration, any_method=True)

        self.url = self.api.url
        self.origin = f"https://{self.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"

        for ack in (
            Acknowledgment(id="AwsSolutions-APIG2",
                           reason="The function validates every body and answers with the API's own "
                                  "JSON errors and CORS headers; gateway validation would bypass both."),
            Acknowledgment(id="AwsSolutions-APIG4",
                           reason="The API serves a public web page with no sign-in; stage throttling "
                                  "bounds abuse."),
            Acknowledgment(id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                              "service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
                           reason="The account-level role API Gateway logs through; this AWS-managed "
                                  "policy is the one AWS documents for it."),
            Acknowledgment(id="AwsSolutions-COG4",
                           reason="No user pool: the API serves a public web page with no sign-in."),
        ):
            Validations.of(self.api).acknowledge(ack)

        if not settings.waf_enabled:
            Validations.of(self.api).acknowledge(Acknowledgment(
                id="AwsSolutions-APIG3",
                reason="WAF turned off with -c waf_enabled=false (it costs about $6 a month): only stage "
                       "throttling and the function's reserved concurrency bound one client."))

    def allow_origin(self, origin: str) -> None:
        """Let pages served from ``origin`` (exactly) call the API from a browser.

        A separate step because the website's CSP needs this API's address first. The answers
        API Gateway and the firewall give themselves are made here too: they carry CORS for
        this origin, so the page can read them (infra/gateway_responses.py).
        """
        self.function.add_environment("ALLOWED_ORIGINS", origin)
        for error in GATEWAY_ERRORS.values():
            self.api.add_gateway_response(
                _GATEWAY_RESPONSE_IDS.get(error.response_type, error.response_type.title().replace("_", "")),
                type=apigw.ResponseType.of(error.response_type),
                status_code=None if error.status is None else str(error.status),
                response_headers={name: f"'{value}'" for name, value in error.headers(origin).items()},
                templates={JSON: error.template()},
            )
        if self.settings.waf_enabled:
            self._firewall(origin, RATE_LIMITED)

    def _firewall(self, origin: str, error: GatewayError) -> None:
        """A WAF web ACL on the stage: each client IP gets ``waf_rate_limit`` requests per 5 minutes.

        Over it, the firewall answers itself (its custom response takes precedence over API
        Gateway's gateway responses) with the contract's 429, until the address slows down.
        """
        assert error.status is not None, "the firewall's answer has a status of its own"

        def metrics(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True)

        acl = wafv2.CfnWebACL(
            self, "Firewall",
            scope="REGIONAL",
            description="Sentiment API: a request-rate limit per client IP address.",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow=wafv2.CfnWebACL.AllowActionProperty()),
            visibility_config=metrics("SentimentApiFirewall"),
            custom_response_bodies={error.code: wafv2.CfnWebACL.CustomResponseBodyProperty(
                content_type="APPLICATION_JSON", content=error.template())},
            rules=[wafv2.CfnWebACL.RuleProperty(
                name="RequestsPerClientIp",
                priority=0,
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP", limit=self.settings.waf_rate_limit,
                        evaluation_window_sec=RATE_LIMIT_WINDOW_S)),
                action=wafv2.CfnWebACL.RuleActionProperty(block=wafv2.CfnWebACL.BlockActionProperty(
                    custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                        response_code=error.status, custom_response_body_key=error.code,
                        response_headers=[wafv2.CfnWebACL.CustomHTTPHeaderProperty(name=name, value=value)
                                          for name, value in error.headers(origin).items()]))),
                visibility_config=metrics("RequestsPerClientIp"),
            )],
        )
        stage = self.api.deployment_stage
        association = wafv2.CfnWebACLAssociation(self, "FirewallAssociation", resource_arn=stage.stage_arn,
                                                 web_acl_arn=acl.attr_arn)
        # The stage ARN holds the stage's name, not a reference CloudFormation would wait for.
        association.node.add_dependency(stage)


# The construct ids these two gateway responses always had: a new logical id would make
# CloudFormation create the new resource, then delete the old one, which resets the type to
# API Gateway's default.
_GATEWAY_RESPONSE_IDS = {"DEFAULT_4XX": "Default4xx", "DEFAULT_5XX": "Default5xx"}
