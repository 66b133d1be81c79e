"""The synthesized CloudFormation template, read as the local stack runs it.

``load_stack(path, addresses)`` reads ``cdk.out/<Stack>.template.json`` and the assets CDK staged
beside it, and returns what the local stack emulates, every value taken from the template:

- the REST API (:class:`RestApi`): its resources and methods (``AWS_PROXY`` to a function, ``MOCK``
  with its integration responses), each stage's name, variables and throttling (``MethodSettings``),
  the gateway responses, and the WAF web ACL associated with a stage (rate-based rules);
- each function an API method integrates with (:class:`LambdaFunction`): handler string, runtime,
  timeout, memory, reserved concurrency, its code (the staged asset) and its environment, with
  CloudFormation references mapped to local equivalents;
- the SageMaker endpoint (:class:`Endpoint`): the model data (``model.tar.gz`` as deployed by the
  template) and the server's code (the image's build context);
- the website (:class:`Website`): the CloudFront distribution's default root object, error
  responses, allowed methods and response headers policy, and the files its S3 origin holds (what
  the template's bucket deployments put there, markers replaced);
- :attr:`LocalStackModel.not_emulated`: everything else the template holds, named.

References are resolved as CloudFormation would (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``,
``Fn::Select``, ``Fn::Split``, ...), with stand-in physical ids. Then :class:`Addresses` maps the
AWS addresses to local ones: the API's ``https://<id>.execute-api.<region>.amazonaws.com`` origin to
the local API, the distribution's ``https://<id>.cloudfront.net`` to the local site, and an
``s3://bucket/key`` environment value to the local file the template deploys at that key.

Standard library only, and no aws_cdk: the local stack and ``invoke`` never start Node.js.
"""

from __future__ import annotations

import fnmatch
import json
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000  # API Gateway's default (and, for REST APIs, usual maximum)
DEFAULT_LAMBDA_TIMEOUT_S = 3  # CloudFormation's defaults for AWS::Lambda::Function
DEFAULT_LAMBDA_MEMORY_MB = 128
REPO_ROOT = Path(__file__).resolve().parent.parent


class TemplateError(ValueError):
    """The template cannot be run locally; the message names the resource and what is wrong."""


class Unresolvable(Exception):
    """A value that only exists in a deployed stack (an SSM parameter, an import, a condition...)."""


# --- addresses ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Addresses:
    """Where the local stack serves the website and the API (origins, no trailing slash)."""

    site_origin: str = "http://127.0.0.1:8000"
    api_origin: str = "http://127.0.0.1:8001"


# --- intrinsic functions ------------------------------------------------------------------------

NO_VALUE = object()  # AWS::NoValue: the property is left out
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# The property that names a resource's physical id, where the template may set it.
_NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::ApiGateway::Stage": "StageName",
    "AWS::SageMaker::Endpoint": "EndpointName",
    "AWS::SageMaker::EndpointConfig": "EndpointConfigName",
    "AWS::SageMaker::Model": "ModelName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::IAM::Role": "RoleName",
    "AWS::WAFv2::WebACL": "Name",
}


class Resolver:
    """CloudFormation's intrinsic functions over one template, with stand-in physical ids.

    A resource without a name property gets its logical id in lower case as its physical id:
    stable, unique within the template and valid as a bucket name or an API id.
    """

    def __init__(self, template: Mapping[str, Any], stack_name: str):
        self.template = template
        self.resources: Mapping[str, Any] = template.get("Resources") or {}
        self.parameters: Mapping[str, Any] = template.get("Parameters") or {}
        self.stack_name = stack_name
        self.pseudo: dict[str, Any] = {
            "AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX, "AWS::StackName": stack_name, "AWS::NoValue": NO_VALUE,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/local",
            "AWS::NotificationARNs": [],
        }

    # - references -
    def resource(self, logical_id: str) -> Mapping[str, Any]:
        found = self.resources.get(logical_id)
        if not isinstance(found, Mapping):
            raise TemplateError(f"the template refers to {logical_id!r}, which is not one of its resources")
        return found

    def props(self, logical_id: str) -> Mapping[str, Any]:
        props = self.resource(logical_id).get("Properties") or {}
        if not isinstance(props, Mapping):
            raise TemplateError(f"{logical_id}: Properties is not an object")
        return props

    def physical_id(self, logical_id: str) -> str:
        resource = self.resource(logical_id)
        name_property = _NAME_PROPERTIES.get(resource.get("Type", ""))
        props = resource.get("Properties") or {}
        if name_property and name_property in props:
            return self.string(props[name_property], f"{logical_id}.{name_property}")
        return logical_id.lower()

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            parameter = self.parameters[name]
            kind = str(parameter.get("Type", ""))
            if kind.startswith("AWS::SSM::Parameter::Value"):
                raise Unresolvable(f"parameter {name} (SSM parameter {parameter.get('Default')}, read at deploy time)")
            if "Default" not in parameter:
                raise Unresolvable(f"parameter {name} (no default; given at deploy time)")
            default = parameter["Default"]
            return default.split(",") if kind.startswith("List<") or kind == "CommaDelimitedList" else default
        if name in self.resources:
            # An alias's Ref is its ARN: the function's, qualified by the alias's name.
            if self.resource(name).get("Type") == "AWS::Lambda::Alias":
                props = self.props(name)
                function = self.string(props.get("FunctionName"), f"{name}.FunctionName")
                if not function.startswith("arn:"):
                    function = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{function}"
                return f"{function}:{self.string(props.get('Name'), f'{name}.Name')}"
            return self.physical_id(name)
        raise TemplateError(f"Ref to {name!r}, which is neither a parameter nor a resource of the template")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.resource(logical_id).get("Type", "")
        props = self.props(logical_id)
        name = self.physical_id(logical_id)
        if kind == "AWS::S3::Bucket":
            values = {"Arn": f"arn:{PARTITION}:s3:::{name}", "DomainName": f"{name}.s3.{URL_SUFFIX}",
                      "RegionalDomainName": f"{name}.s3.{REGION}.{URL_SUFFIX}"}
            if attribute in values:
                return values[attribute]
        elif kind == "Custom::CDKBucketDeployment" and attribute == "DestinationBucketArn":
            if "DestinationBucketArn" in props:
                return self.resolve(props["DestinationBucketArn"])
            return f"arn:{PARTITION}:s3:::{self.string(props.get('DestinationBucketName'), logical_id)}"
        elif kind == "AWS::CloudFront::Distribution":
            if attribute == "DomainName":
                return f"{name}.cloudfront.net"
            if attribute == "Id":
                return name.upper()
        elif kind == "AWS::Lambda::Version" and attribute == "Version":
            return "1"  # the local stack runs the function's code as it is in cdk.out
        elif kind == "AWS::Lambda::Function" and attribute == "Arn":
            return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        elif kind.startswith("AWS::SageMaker::") and attribute in ("EndpointName", "EndpointConfigName", "ModelName"):
            return name
        elif kind == "AWS::ApiGateway::RestApi" and attribute == "RootResourceId":
            return f"{name}-root"
        elif kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}"
        elif kind == "AWS::WAFv2::WebACL" and attribute == "Arn":
            return f"arn:{PARTITION}:wafv2:{REGION}:{ACCOUNT_ID}:regional/webacl/{name}/local"
        elif kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
        raise Unresolvable(f"{logical_id}.{attribute} ({kind}), known only once deployed")

    # - functions -
    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated (Unresolvable where one cannot be)."""
        if isinstance(value, list):
            resolved = [self.resolve(item) for item in value]
            return [item for item in resolved if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self.ref(self.string(argument, "Ref"))
            if key == "Fn::GetAtt":
                if isinstance(argument, str):
                    argument = argument.split(".", 1)
                if not (isinstance(argument, list) and len(argument) == 2):
                    raise TemplateError(f"Fn::GetAtt needs [resource, attribute], got {argument!r}")
                return self.get_att(self.string(argument[0], "Fn::GetAtt"), self.string(argument[1], "Fn::GetAtt"))
            if key == "Fn::Join":
                separator, parts = self._pair(key, argument)
                return self.string(separator, key).join(self.string(part, key) for part in self._list(key, parts))
            if key == "Fn::Select":
                index, items = self._pair(key, argument)
                items = self._list(key, items)
                position = int(self.string(index, key))
                if not 0 <= position < len(items):
                    raise TemplateError(f"Fn::Select index {position} is outside a list of {len(items)}")
                return items[position]
            if key == "Fn::Split":
                separator, text = self._pair(key, argument)
                return self.string(text, key).split(self.string(separator, key))
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::Base64":
                import base64
                return base64.b64encode(self.string(argument, key).encode()).decode()
            if key == "Fn::GetAZs":
                return [f"{REGION}{zone}" for zone in "abc"]
            if key == "Fn::FindInMap":
                name, top, second = (self.string(part, key) for part in self._list(key, argument)[:3])
                try:
                    return self.template["Mappings"][name][top][second]
                except (KeyError, TypeError):
                    raise TemplateError(f"Fn::FindInMap: no {name}/{top}/{second} in the template's Mappings") from None
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(argument), separators=(",", ":"))
            if key.startswith("Fn::") or key == "Condition":
                raise Unresolvable(f"{key} (not evaluated by the local stack)")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not NO_VALUE}

    def string(self, value: Any, where: str) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, (str, int, float)):
            return str(resolved)
        raise TemplateError(f"{where}: expected a string, got {json.dumps(resolved)[:200]}")

    def _pair(self, key: str, argument: Any) -> tuple[Any, Any]:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateError(f"{key} needs a list of two, got {json.dumps(argument)[:200]}")
        return argument[0], argument[1]

    def _list(self, key: str, value: Any) -> list[Any]:
        resolved = self.resolve(value)
        if not isinstance(resolved, list):
            raise TemplateError(f"{key} needs a list, got {json.dumps(resolved)[:200]}")
        return resolved

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = self._pair("Fn::Sub", argument)
            if not isinstance(variables, dict):
                raise TemplateError("Fn::Sub's second item must be an object of variables")
        else:
            text, variables = argument, {}
        if not isinstance(text, str):
            raise TemplateError("Fn::Sub needs a string")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self.string(variables[name], f"Fn::Sub ${{{name}}}")
            if "." in name and name.split(".", 1)[0] in self.resources:
                resource, attribute = name.split(".", 1)
                return self.string(self.get_att(resource, attribute), f"Fn::Sub ${{{name}}}")
            return self.string(self.ref(name), f"Fn::Sub ${{{name}}}")

        return _SUB_VARIABLE.sub(replace, text)


# --- the model ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IntegrationResponse:
    status: int
    selection_pattern: str | None
    headers: dict[str, str]  # method.response.header.X -> its expression ('static' or method.request...)
    templates: dict[str, str]


@dataclass(frozen=True)
class Integration:
    type: str  # AWS_PROXY, MOCK, AWS, HTTP, HTTP_PROXY
    function: str | None  # logical id of the Lambda function, for AWS_PROXY
    uri: str | None
    http_method: str | None  # IntegrationHttpMethod
    timeout_ms: int
    request_templates: dict[str, str] = field(default_factory=dict)
    responses: tuple[IntegrationResponse, ...] = ()


@dataclass(frozen=True)
class Method:
    logical_id: str
    resource_path: str
    http_method: str  # as in the template: GET, POST, ..., or ANY
    authorization_type: str
    api_key_required: bool
    integration: Integration


@dataclass(frozen=True)
class Throttle:
    rate: float  # requests per second, refilled continuously
    burst: int  # the bucket's size


@dataclass(frozen=True)
class GatewayResponse:
    response_type: str
    status: int | None  # None: the status of the error it answers
    headers: dict[str, str]  # header name -> expression ('static' or method.request.header.X)
    templates: dict[str, str]  # content type -> body template


@dataclass(frozen=True)
class CustomResponse:
    status: int
    headers: dict[str, str]
    body: str | None
    content_type: str


@dataclass(frozen=True)
class RateRule:
    """A WAF rate-based rule: more than ``limit`` requests from one address in ``window_s`` seconds."""

    name: str
    priority: int
    limit: int
    window_s: int
    action: str  # Block or Count
    custom_response: CustomResponse | None  # None: API Gateway's WAF_FILTERED answer (403)


@dataclass(frozen=True)
class Firewall:
    logical_id: str
    default_action: str  # Allow or Block
    default_response: CustomResponse | None
    rules: tuple[RateRule, ...]


@dataclass(frozen=True)
class Stage:
    name: str
    variables: dict[str, str]
    # (resource path or "*", HTTP method or "*") -> throttle, from MethodSettings
    throttles: dict[tuple[str, str], Throttle]
    firewall: Firewall | None

    def throttle_for(self, method: Method) -> Throttle | None:
        """The throttle API Gateway applies to ``method``: its own MethodSettings, else the stage's."""
        for key in ((method.resource_path, method.http_method), (method.resource_path, "*"), ("*", "*")):
            if key in self.throttles:
                return self.throttles[key]
        return None


@dataclass(frozen=True)
class RestApi:
    logical_id: str
    api_id: str
    name: str
    binary_media_types: tuple[str, ...]
    # resource path -> {HTTP method as in the template -> method}
    resources: dict[str, dict[str, Method]]
    stages: dict[str, Stage]
    gateway_responses: dict[str, GatewayResponse]

    def match(self, path: str) -> tuple[str, dict[str, str] | None] | None:
        """The resource API Gateway routes ``path`` to and its path parameters, or None (no route).

        Segment by segment from the root: a literal child first, then a ``{name}`` child for one
        segment, then a greedy ``{name+}`` child that takes the rest. There is no backtracking: a
        path that matched a literal resource is not handed to a ``{proxy+}`` higher up, which is
        why every literal resource needs its own greedy child.
        """
        current, parameters = "/", {}
        segments = path.split("/")[1:]
        if segments == [""]:
            segments = []
        for index, segment in enumerate(segments):
            children = self._children(current)
            literal = _join(current, segment)
            if segment and literal in children:
                current = literal
                continue
            single = next((c for c in children if _is_param(c) and not c.endswith("+}")), None)
            if segment and single is not None:
                parameters[_param_name(single)] = segment
                current = single
                continue
            greedy = next((c for c in children if c.endswith("+}")), None)
            if greedy is not None:
                parameters[_param_name(greedy)] = "/".join(segments[index:])
                return greedy, parameters
            return None
        return current, parameters or None

    def method(self, resource_path: str, http_method: str) -> Method | None:
        methods = self.resources.get(resource_path, {})
        return methods.get(http_method) or methods.get("ANY")

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [p for p in self.resources if p.startswith(prefix) and "/" not in p[len(prefix):] and p != path]


def _join(parent: str, part: str) -> str:
    return f"{parent.rstrip('/')}/{part}"


def _is_param(path: str) -> bool:
    last = path.rsplit("/", 1)[-1]
    return last.startswith("{") and last.endswith("}")


def _param_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].strip("{}").rstrip("+")


@dataclass(frozen=True)
class LambdaFunction:
    logical_id: str
    name: str
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    reserved_concurrency: int | None
    code_dir: Path
    environment: dict[str, str]  # as the function sees it in AWS, references mapped to local values
    log_group: str
    architecture: str = "x86_64"
    python: str = sys.executable  # the interpreter its environments run: one of the runtime's version if any
    python_version: str = platform.python_version()

    @property
    def arn(self) -> str:
        return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"


@dataclass(frozen=True)
class Endpoint:
    logical_id: str
    name: str
    model_data: Path  # the local model.tar.gz the template deploys at the model's ModelDataUrl
    code_dir: Path  # the server image's build context
    environment: dict[str, str]  # the container's Environment
    variant: str


@dataclass(frozen=True)
class HeaderRule:
    name: str
    value: str
    override: bool


@dataclass(frozen=True)
class ErrorResponse:
    error_code: int
    response_code: int | None
    page_path: str | None


@dataclass(frozen=True)
class SiteObject:
    """One object of the website's bucket: its bytes (read on demand) and its S3 metadata."""

    key: str
    read: Callable[[], bytes]
    cache_control: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class Website:
    logical_id: str
    domain: str
    default_root_object: str | None
    allowed_methods: tuple[str, ...]
    error_responses: tuple[ErrorResponse, ...]
    headers: tuple[HeaderRule, ...]  # the response headers policy, in order
    remove_headers: tuple[str, ...]
    objects: dict[str, SiteObject]


@dataclass
class LocalStackModel:
    """Everything the local stack runs, read from one template."""

    path: Path | None
    stack_name: str
    api: RestApi
    functions: dict[str, LambdaFunction]
    endpoint: Endpoint | None
    website: Website | None
    not_emulated: list[str]
    addresses: Addresses
    scratch_dir: Path | None = None  # files the reader had to write (inline code, objects with markers)

    @property
    def api_url(self) -> str:
        """The URL of the API's first stage, as the template's ApiUrl output would say, locally."""
        return f"{self.addresses.api_origin}/{next(iter(self.api.stages))}"

    def function(self, logical_id: str | None = None) -> LambdaFunction:
        """The function ``logical_id``, or the only one behind the API."""
        if logical_id is None:
            if len(self.functions) != 1:
                raise TemplateError(f"the API integrates with {len(self.functions)} functions "
                                    f"({', '.join(self.functions)}); name one with --function")
            return next(iter(self.functions.values()))
        if logical_id not in self.functions:
            raise TemplateError(f"no function {logical_id!r} behind the API; there is {', '.join(self.functions)}")
        return self.functions[logical_id]


# --- S3: what the template's bucket deployments put where -----------------------------------------

@dataclass(frozen=True)
class _S3Object:
    bucket: str
    key: str
    read: Callable[[], bytes]
    path: Path | None  # the staged file itself, when its bytes are the file's
    cache_control: str | None
    content_type: str | None


class _Assets:
    """The staged assets beside the template (``asset.<hash>`` folders or zips)."""

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir

    def locate(self, name: str, where: str) -> Path:
        path = Path(name)
        if not path.is_absolute():
            path = self.base_dir / path
        if path.exists():
            return path
        raise TemplateError(f"{where}: asset {name} is not in {self.base_dir}; synthesize again "
                            "(`make demo` runs `npx cdk synth -o cdk.out`)")

    def by_key(self, object_key: str, where: str) -> Path:
        """The staged asset an S3 key of CDK's asset bucket (``<hash>.zip``) was built from."""
        digest = object_key.removesuffix(".zip")
        for candidate in (f"asset.{digest}", f"asset.{digest}.zip", f"asset.{object_key}"):
            if (self.base_dir / candidate).exists():
                return self.base_dir / candidate
        raise TemplateError(f"{where}: asset {object_key} is not in {self.base_dir}; synthesize again "
                            "(`make demo` runs `npx cdk synth -o cdk.out`)")


def _files(asset: Path) -> Iterator[tuple[str, Callable[[], bytes], Path | None]]:
    """(relative key, reader, file path or None) for every file of a staged folder or zip."""
    if asset.is_dir():
        for path in sorted(p for p in asset.rglob("*") if p.is_file()):
            yield path.relative_to(asset).as_posix(), path.read_bytes, path
    else:
        with zipfile.ZipFile(asset) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
        for name in names:
            def read(name: str = name) -> bytes:
                with zipfile.ZipFile(asset) as archive:
                    return archive.read(name)
            yield name, read, None


def _bucket_objects(resolver: Resolver, assets: _Assets,
                    localize: Callable[[str], str]) -> dict[tuple[str, str], _S3Object]:
    objects: dict[tuple[str, str], _S3Object] = {}
    for logical_id, resource in resolver.resources.items():
        if resource.get("Type") != "Custom::CDKBucketDeployment":
            continue
        props = resolver.props(logical_id)
        bucket = resolver.string(props.get("DestinationBucketName"), f"{logical_id}.DestinationBucketName")
        prefix = resolver.string(props.get("DestinationBucketKeyPrefix", ""), logical_id)
        prefix = "" if prefix == "/" else prefix
        keys = resolver.resolve(props.get("SourceObjectKeys") or [])
        markers = resolver.resolve(props.get("SourceMarkers") or [{} for _ in keys])
        markers_config = resolver.resolve(props.get("SourceMarkersConfig") or [{} for _ in keys])
        system = {str(k).lower(): str(v) for k, v in (resolver.resolve(props.get("SystemMetadata")) or {}).items()}
        exclude = [str(p) for p in resolver.resolve(props.get("Exclude") or [])]
        include = [str(p) for p in resolver.resolve(props.get("Include") or [])]
        for index, object_key in enumerate(keys):
            asset = assets.by_key(str(object_key), logical_id)
            replacements = _marker_replacements(markers[index] if index < len(markers) else {},
                                                markers_config[index] if index < len(markers_config) else {},
                                                localize)
            for relative, read, path in _files(asset):
                if not _synced(relative, exclude, include):
                    continue
                if replacements:
                    read, path = _with_markers(read, replacements), None
                objects[(bucket, prefix + relative)] = _S3Object(
                    bucket, prefix + relative, read, path, system.get("cache-control"), system.get("content-type"))
    return objects


def _synced(relative: str, exclude: list[str], include: list[str]) -> bool:
    """``aws s3 sync --exclude ... --include ...``: the last filter that matches decides."""
    keep = True
    for pattern, verdict in [*((p, False) for p in exclude), *((p, True) for p in include)]:
        if fnmatch.fnmatchcase(relative, pattern):
            keep = verdict
    return keep


def _marker_replacements(markers: Any, config: Any, localize: Callable[[str], str]) -> dict[bytes, bytes]:
    if not isinstance(markers, dict) or not markers:
        return {}
    json_escape = str((config or {}).get("jsonEscape", "false")).lower() == "true"
    replacements = {}
    for marker, value in markers.items():
        text = localize(str(value))
        if json_escape:
            text = json.dumps(text)[1:-1]
        replacements[str(marker).encode()] = text.encode()
    return replacements


def _with_markers(read: Callable[[], bytes], replacements: dict[bytes, bytes]) -> Callable[[], bytes]:
    def replaced() -> bytes:  # as CDK's deployment handler does, token by token
        data = read()
        for token, value in replacements.items():
            data = data.replace(token, value)
        return data
    return replaced


# --- reading the template ---------------------------------------------------------------------------

class _Reader:
    def __init__(self, template: Mapping[str, Any], base_dir: Path, stack_name: str, addresses: Addresses):
        if not isinstance(template, Mapping) or not isinstance(template.get("Resources"), Mapping):
            raise TemplateError("not a CloudFormation template: it has no Resources object")
        self.resolver = Resolver(template, stack_name)
        self.resources = self.resolver.resources
        self.assets = _Assets(base_dir)
        self.addresses = addresses
        self.notes: list[str] = []  # what is not emulated, in words
        self.handled: set[str] = set()  # logical ids of what is emulated (or mapped)
        self._replacements: list[tuple[str, str]] = []
        self.scratch_dir: Path | None = None
        self.objects: dict[tuple[str, str], _S3Object] = {}

    def of_type(self, kind: str) -> dict[str, Mapping[str, Any]]:
        return {k: r for k, r in self.resources.items() if isinstance(r, Mapping) and r.get("Type") == kind}

    def localize(self, text: str) -> str:
        for aws, local in self._replacements:
            text = text.replace(aws, local)
        return text

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # - the whole stack -
    def read(self, path: Path | None) -> LocalStackModel:
        apis = self.of_type("AWS::ApiGateway::RestApi")
        if len(apis) != 1:
            raise TemplateError(f"the local stack runs one REST API (AWS::ApiGateway::RestApi); the template "
                                f"has {len(apis)}{': ' + ', '.join(apis) if apis else ''}")
        (api_id,) = apis
        distributions = self.of_type("AWS::CloudFront::Distribution")
        # The addresses the template's values will be mapped from: the API's and the site's origins.
        api_host = f"{self.resolver.physical_id(api_id)}.execute-api.{REGION}.{URL_SUFFIX}"
        self._replacements.append((f"https://{api_host}", self.addresses.api_origin))
        for distribution in distributions:
            domain = self.resolver.get_att(distribution, "DomainName")
            self._replacements.append((f"https://{domain}", self.addresses.site_origin))
        self.objects = _bucket_objects(self.resolver, self.assets, self.localize)
        self.handled.update(self.of_type("Custom::CDKBucketDeployment"))

        api = self.rest_api(api_id)
        functions = {}
        for methods in api.resources.values():
            for method in methods.values():
                if method.integration.function and method.integration.function not in functions:
                    functions[method.integration.function] = self.function(method.integration.function)
        endpoint = self.endpoint(functions)
        website = self.website(distributions)
        self.remaining()
        return LocalStackModel(path=path, stack_name=self.resolver.stack_name, api=api, functions=functions,
                               endpoint=endpoint, website=website, not_emulated=self.notes, addresses=self.addresses,
                               scratch_dir=self.scratch_dir)

    # - API Gateway -
    def rest_api(self, api_id: str) -> RestApi:
        props = self.resolver.props(api_id)
        self.handled.add(api_id)
        root = self.resolver.get_att(api_id, "RootResourceId")
        for key in ("Body", "BodyS3Location"):
            if key in props:
                raise TemplateError(f"{api_id}: an API defined by an OpenAPI {key} is not read by the local stack; "
                                    "define its resources and methods in the template")
        api = self.resolver.physical_id(api_id)
        resources = {k: r for k, r in self.of_type("AWS::ApiGateway::Resource").items()
                     if self.resolver.resolve((r.get("Properties") or {}).get("RestApiId")) == api}
        paths: dict[str, str] = {}

        def path_of(resource_id: str, seen: tuple[str, ...] = ()) -> str:
            if resource_id in paths:
                return paths[resource_id]
            if resource_id in seen:
                raise TemplateError(f"{resource_id}: the API's resources form a cycle")
            props = self.resolver.props(resource_id)
            parent = props.get("ParentId")
            part = self.resolver.string(props.get("PathPart"), f"{resource_id}.PathPart")
            if self.resolver.resolve(parent) == root:
                parent_path = "/"
            else:
                parent_path = path_of(self._resource_ref(parent, resource_id), (*seen, resource_id))
            paths[resource_id] = _join(parent_path, part)
            return paths[resource_id]

        table: dict[str, dict[str, Method]] = {"/": {}}
        for resource_id in resources:
            table.setdefault(path_of(resource_id), {})
            self.handled.add(resource_id)
        for method_id, method in self.of_type("AWS::ApiGateway::Method").items():
            mprops = method.get("Properties") or {}
            if self.resolver.resolve(mprops.get("RestApiId")) != self.resolver.physical_id(api_id):
                continue
            self.handled.add(method_id)
            resource_ref = mprops.get("ResourceId")
            resource_path = "/" if self.resolver.resolve(resource_ref) == root else path_of(
                self._resource_ref(resource_ref, method_id))
            http_method = self.resolver.string(mprops.get("HttpMethod"), f"{method_id}.HttpMethod").upper()
            method_model = self.method(method_id, mprops, resource_path, http_method)
            table.setdefault(resource_path, {})[http_method] = method_model

        stages = self.stages(api_id)
        responses = {}
        for response_id, response in self.of_type("AWS::ApiGateway::GatewayResponse").items():
            rprops = response.get("Properties") or {}
            if self.resolver.resolve(rprops.get("RestApiId")) != self.resolver.physical_id(api_id):
                continue
            self.handled.add(response_id)
            kind = self.resolver.string(rprops.get("ResponseType"), f"{response_id}.ResponseType")
            status = rprops.get("StatusCode")
            parameters = rprops.get("ResponseParameters") or {}
            responses[kind] = GatewayResponse(
                response_type=kind,
                status=None if status is None else _int(self.resolver.string(status, response_id),
                                                        f"{response_id}.StatusCode"),
                headers={name.removeprefix("gatewayresponse.header."):
                         self.localize(self.resolver.string(v, response_id)) for name, v in parameters.items()},
                templates={k: self.resolver.string(v, response_id)
                           for k, v in (rprops.get("ResponseTemplates") or {}).items()},
            )
        for deployment in self.of_type("AWS::ApiGateway::Deployment"):
            self.handled.add(deployment)
        return RestApi(
            logical_id=api_id, api_id=self.resolver.physical_id(api_id),
            name=self.resolver.string(props.get("Name", api_id), f"{api_id}.Name"),
            binary_media_types=tuple(str(t) for t in self.resolver.resolve(props.get("BinaryMediaTypes") or [])),
            resources=table, stages=stages, gateway_responses=responses)

    def _resource_ref(self, ref: Any, where: str) -> str:
        if isinstance(ref, dict) and isinstance(ref.get("Ref"), str) and ref["Ref"] in self.resources:
            return ref["Ref"]
        raise TemplateError(f"{where}: ResourceId/ParentId must be a Ref to an AWS::ApiGateway::Resource, got {ref!r}")

    def method(self, method_id: str, props: Mapping[str, Any], resource_path: str, http_method: str) -> Method:
        where = f"{http_method} {resource_path} ({method_id})"
        authorization = str(self.resolver.resolve(props.get("AuthorizationType", "NONE")))
        if authorization != "NONE":
            self.note(f"{authorization} authorization of {http_method} {resource_path}")
        if props.get("ApiKeyRequired"):
            self.note(f"API keys of {http_method} {resource_path}")
        if props.get("RequestValidatorId"):
            self.note(f"request validation of {http_method} {resource_path}")
        integration = props.get("Integration") or {}
        kind = str(self.resolver.resolve(integration.get("Type", "MOCK"))).upper()
        timeout = integration.get("TimeoutInMillis", DEFAULT_INTEGRATION_TIMEOUT_MS)
        function = uri = None
        if "Uri" in integration:
            try:
                uri = self.resolver.string(integration["Uri"], f"{where}: Integration.Uri")
            except Unresolvable as exc:
                uri = None
                self.note(f"the integration of {http_method} {resource_path} ({exc})")
        if kind in ("AWS_PROXY", "AWS") and uri and ":lambda:path/" in uri:
            function = self._function_of(uri, where)
            if kind == "AWS":
                self.note(f"the non-proxy Lambda integration of {http_method} {resource_path} (answered 500)")
                function = None
        elif kind not in ("MOCK",):
            self.note(f"the {kind} integration of {http_method} {resource_path} (answered 500)")
        responses = tuple(
            IntegrationResponse(
                status=_int(self.resolver.string(r.get("StatusCode"), where),
                            f"{where}: IntegrationResponses.StatusCode"),
                selection_pattern=None if r.get("SelectionPattern") in (None, "") else
                self.resolver.string(r["SelectionPattern"], where),
                headers={name: self.localize(self.resolver.string(v, where))
                         for name, v in (r.get("ResponseParameters") or {}).items()},
                templates={k: self.resolver.string(v, where) for k, v in (r.get("ResponseTemplates") or {}).items()},
            )
            for r in self.resolver.resolve(integration.get("IntegrationResponses") or []))
        return Method(
            logical_id=method_id, resource_path=resource_path, http_method=http_method,
            authorization_type=authorization, api_key_required=bool(props.get("ApiKeyRequired")),
            integration=Integration(
                type=kind, function=function, uri=uri,
                http_method=None if "IntegrationHttpMethod" not in integration else
                self.resolver.string(integration["IntegrationHttpMethod"], where).upper(),
                timeout_ms=_int(self.resolver.string(timeout, where), f"{where}: TimeoutInMillis"),
                request_templates={k: self.resolver.string(v, where)
                                   for k, v in (integration.get("RequestTemplates") or {}).items()},
                responses=responses))

    def _function_of(self, uri: str, where: str) -> str | None:
        match = re.search(r"functions/(arn:[^/]+)/invocations", uri)
        arn = match.group(1) if match else ""
        parts = arn.split(":")
        name = parts[6] if len(parts) >= 7 and parts[5] == "function" else None
        for logical_id in self.of_type("AWS::Lambda::Function"):
            if self.resolver.physical_id(logical_id) == name:
                return logical_id
        self.note(f"{where}: function {arn or uri} is not in the template (answered 500)")
        return None

    def stages(self, api_id: str) -> dict[str, Stage]:
        stages: dict[str, Stage] = {}
        associations = self._firewalls()
        api = self.resolver.physical_id(api_id)
        for stage_id, stage in self.of_type("AWS::ApiGateway::Stage").items():
            props = stage.get("Properties") or {}
            if self.resolver.resolve(props.get("RestApiId")) != api:
                continue
            self.handled.add(stage_id)
            name = self.resolver.physical_id(stage_id)
            throttles: dict[tuple[str, str], Throttle] = {}
            settings = self.resolver.resolve(props.get("MethodSettings") or [])
            default: dict[str, Any] = next(
                (s for s in settings if s.get("ResourcePath") == "/*" and s.get("HttpMethod") == "*"), {})
            for setting in settings:
                key = (_settings_path(str(setting.get("ResourcePath", "/*"))),
                       str(setting.get("HttpMethod", "*")).upper())
                rate = setting.get("ThrottlingRateLimit", default.get("ThrottlingRateLimit"))
                burst = setting.get("ThrottlingBurstLimit", default.get("ThrottlingBurstLimit"))
                if rate is not None or burst is not None:
                    throttles[key] = Throttle(rate=float(rate if rate is not None else 10_000),
                                              burst=int(burst if burst is not None else 5_000))
                if setting.get("CachingEnabled"):
                    self.note(f"caching in stage {name}")
            if props.get("TracingEnabled"):
                self.note("X-Ray tracing (stage " + name + ")")
            if props.get("AccessLogSetting"):
                self.note(f"access logs (stage {name})")
            if any(s.get("LoggingLevel") not in (None, "OFF") or s.get("MetricsEnabled") for s in settings):
                self.note(f"execution logs and metrics (stage {name})")
            if props.get("CacheClusterEnabled"):
                self.note(f"the cache cluster of stage {name}")
            arn = f"arn:{PARTITION}:apigateway:{REGION}::/restapis/{api}/stages/{name}"
            stages[name] = Stage(name=name,
                                 variables={k: self.localize(str(v)) for k, v in
                                            self.resolver.resolve(props.get("Variables") or {}).items()},
                                 throttles=throttles, firewall=associations.get(arn))
        if not stages:
            raise TemplateError(f"the REST API {api_id} has no AWS::ApiGateway::Stage: it would serve nothing")
        return stages

    def _firewalls(self) -> dict[str, Firewall]:
        by_arn: dict[str, Firewall] = {}
        for association_id, association in self.of_type("AWS::WAFv2::WebACLAssociation").items():
            props = association.get("Properties") or {}
            acl_ref = props.get("WebACLArn")
            acl_id = acl_ref.get("Fn::GetAtt", [None])[0] if isinstance(acl_ref, dict) else None
            if not isinstance(acl_id, str) or acl_id not in self.resources:
                self.note(f"web ACL association {association_id} (its ACL is not in the template)")
                continue
            self.handled.update((association_id, acl_id))
            by_arn[self.resolver.string(props.get("ResourceArn"), association_id)] = self.firewall(acl_id)
        return by_arn

    def firewall(self, acl_id: str) -> Firewall:
        props = self.resolver.props(acl_id)
        bodies = self.resolver.resolve(props.get("CustomResponseBodies") or {})

        def custom(block: Mapping[str, Any] | None, where: str) -> CustomResponse | None:
            response = (block or {}).get("CustomResponse")
            if not response:
                return None
            body = bodies.get(response.get("CustomResponseBodyKey")) if response.get("CustomResponseBodyKey") else None
            kinds = {"APPLICATION_JSON": "application/json", "TEXT_HTML": "text/html", "TEXT_PLAIN": "text/plain"}
            return CustomResponse(
                status=_int(str(response.get("ResponseCode")), f"{where}: ResponseCode"),
                headers={str(h["Name"]): self.localize(str(h["Value"])) for h in response.get("ResponseHeaders") or []},
                body=None if body is None else str(body.get("Content", "")),
                content_type=kinds.get(str((body or {}).get("ContentType", "TEXT_PLAIN")), "text/plain"))

        default = self.resolver.resolve(props.get("DefaultAction") or {"Allow": {}})
        rules = []
        for rule in self.resolver.resolve(props.get("Rules") or []):
            name = str(rule.get("Name", "?"))
            statement = rule.get("Statement") or {}
            rate = statement.get("RateBasedStatement")
            action = rule.get("Action") or {}
            if rate is None or rule.get("OverrideAction"):
                self.note(f"WAF rule {name} (only rate-based rules are evaluated)")
                continue
            if rate.get("AggregateKeyType", "IP") != "IP":
                self.note(f"WAF rule {name}: {rate.get('AggregateKeyType')} keys (counted per client IP)")
            if rate.get("ScopeDownStatement"):
                self.note(f"WAF rule {name}: its scope-down statement (every request is counted)")
            verb = "Block" if "Block" in action else "Count" if "Count" in action else None
            if verb is None:
                self.note(f"WAF rule {name}: action {', '.join(action) or 'none'} (not applied)")
                continue
            rules.append(RateRule(name=name, priority=int(rule.get("Priority", 0)), limit=int(rate["Limit"]),
                                  window_s=int(rate.get("EvaluationWindowSec", 300)), action=verb,
                                  custom_response=custom(action.get("Block"), f"{acl_id} rule {name}")))
        return Firewall(logical_id=acl_id, default_action="Block" if "Block" in default else "Allow",
                        default_response=custom(default.get("Block"), f"{acl_id} DefaultAction"),
                        rules=tuple(sorted(rules, key=lambda r: r.priority)))

    # - Lambda -
    def function(self, logical_id: str) -> LambdaFunction:
        self.handled.add(logical_id)
        props = self.resolver.props(logical_id)
        where = f"function {logical_id}"
        handler = self.resolver.string(props.get("Handler"), f"{where}: Handler")
        runtime = self.resolver.string(props.get("Runtime", ""), f"{where}: Runtime")
        if props.get("PackageType") == "Image" or not runtime.startswith("python"):
            raise TemplateError(f"{where}: runtime {runtime or props.get('PackageType')!r}; the local stack runs "
                                "Python zip functions only")
        architecture = (self.resolver.resolve(props.get("Architectures")) or ["x86_64"])[0]
        python, python_version = runtime_python(runtime)
        if python == sys.executable and runtime != f"python{sys.version_info.major}.{sys.version_info.minor}":
            self.note(f"runtime {runtime} ({logical_id} runs on this Python {python_version}; make install "
                      f"builds .venv-py{runtime.removeprefix('python')} for it)")
        machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(
            platform.machine().lower(), platform.machine())
        if architecture != machine:
            self.note(f"the {architecture} architecture ({logical_id} runs on this {machine})")
        if props.get("TracingConfig", {}).get("Mode") == "Active":
            self.note(f"X-Ray tracing ({logical_id})")
        if props.get("Layers"):
            self.note(f"the layers of {logical_id} (their packages come from this virtualenv)")
        for key, what in (("VpcConfig", "VPC"), ("DeadLetterConfig", "dead-letter queue"),
                          ("FileSystemConfigs", "file systems"), ("SnapStart", "SnapStart"),
                          ("KmsKeyArn", "KMS key")):
            if props.get(key):
                self.note(f"the {what} of {logical_id}")
        name = self.resolver.physical_id(logical_id)
        log_group = f"/aws/lambda/{name}"
        logging = props.get("LoggingConfig") or {}
        if logging.get("LogGroup"):
            try:
                log_group = self.resolver.string(logging["LogGroup"], where)
            except Unresolvable:
                pass
        reserved = props.get("ReservedConcurrentExecutions")
        memory = _int(self.resolver.string(props.get("MemorySize", DEFAULT_LAMBDA_MEMORY_MB), where),
                      f"{where}: MemorySize")
        timeout = float(self.resolver.string(props.get("Timeout", DEFAULT_LAMBDA_TIMEOUT_S), where))
        if timeout <= 0:
            raise TemplateError(f"{where}: Timeout {timeout:g} is not a positive number of seconds")
        return LambdaFunction(
            logical_id=logical_id, name=name, handler=handler, runtime=runtime, timeout_s=timeout,
            memory_mb=memory,
            reserved_concurrency=None if reserved is None else _int(self.resolver.string(reserved, where),
                                                                    f"{where}: ReservedConcurrentExecutions"),
            code_dir=self.code(logical_id, props), environment=self.environment(logical_id, props),
            log_group=log_group, architecture=str(architecture), python=python, python_version=python_version)

    def code(self, logical_id: str, props: Mapping[str, Any]) -> Path:
        where = f"function {logical_id}"
        code = props.get("Code") or {}
        asset = (self.resources[logical_id].get("Metadata") or {}).get("aws:asset:path")
        if asset:
            return self.assets.locate(str(asset), where)
        if isinstance(code.get("S3Key"), str):
            return self.assets.by_key(code["S3Key"], where)
        if "ZipFile" in code:
            inline = self.scratch("inline-" + logical_id)
            (inline / "index.py").write_text(self.resolver.string(code["ZipFile"], where))
            return inline
        raise TemplateError(f"{where}: its code is not a staged asset (no aws:asset:path metadata); "
                            "the local stack runs code that `cdk synth` staged")

    def environment(self, logical_id: str, props: Mapping[str, Any]) -> dict[str, str]:
        variables = (props.get("Environment") or {}).get("Variables") or {}
        environment = {}
        for name, value in variables.items():
            try:
                text = self.resolver.string(value, f"{logical_id} environment {name}")
            except Unresolvable as exc:
                text = f"<{exc}>"
                self.note(f"{logical_id}'s {name} ({exc})")
            environment[name] = self.local_value(text)
        return environment

    def local_value(self, text: str) -> str:
        """An environment value as the local function sees it: an S3 object the template deploys
        becomes its local file, an AWS address of this stack its local address."""
        if text.startswith("s3://"):
            bucket, _, key = text.removeprefix("s3://").partition("/")
            found = self.objects.get((bucket, key))
            if found is not None:
                return str(self.materialize(found))
            return text  # not deployed by the template: the function's S3 call fails locally, as in AWS
        return self.localize(text)

    def materialize(self, found: _S3Object) -> Path:
        if found.path is not None:
            return found.path
        target = self.scratch("s3") / found.bucket / found.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(found.read())
        return target

    def scratch(self, name: str) -> Path:
        if self.scratch_dir is None:
            self.scratch_dir = Path(tempfile.mkdtemp(prefix="local_stack-template-"))
        path = self.scratch_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # - SageMaker -
    def endpoint(self, functions: Mapping[str, LambdaFunction]) -> Endpoint | None:
        endpoints = self.of_type("AWS::SageMaker::Endpoint")
        if not endpoints:
            return None
        if len(endpoints) > 1:
            raise TemplateError("the local stack serves one SageMaker endpoint; the template has "
                                f"{', '.join(endpoints)}")
        (endpoint_id,) = endpoints
        self.handled.add(endpoint_id)
        name = self.resolver.physical_id(endpoint_id)
        config_name = self.resolver.string(self.resolver.props(endpoint_id).get("EndpointConfigName"), endpoint_id)
        config_id = self._by_physical_id("AWS::SageMaker::EndpointConfig", config_name, endpoint_id)
        self.handled.add(config_id)
        config = self.resolver.props(config_id)
        variants = self.resolver.resolve(config.get("ProductionVariants") or [])
        if not variants:
            raise TemplateError(f"{config_id} has no ProductionVariants")
        first = variants[0]
        for other in variants[1:]:
            self.note(f"endpoint variant {other.get('VariantName')} (weight {other.get('InitialVariantWeight')}: "
                      f"every request goes to {first.get('VariantName')})")
        if first.get("ServerlessConfig"):
            serverless = first["ServerlessConfig"]
            self.note(f"SageMaker serverless capacity ({serverless.get('MemorySizeInMB')} MB, at most "
                      f"{serverless.get('MaxConcurrency')} at once)")
        elif first.get("InstanceType"):
            self.note(f"SageMaker instances ({first.get('InitialInstanceCount')} x {first.get('InstanceType')})")
        if config.get("DataCaptureConfig"):
            self.note("endpoint data capture")
        model_id = self._by_physical_id("AWS::SageMaker::Model", str(first.get("ModelName")), config_id)
        self.handled.add(model_id)
        model = self.resolver.props(model_id)
        container = model.get("PrimaryContainer") or (model.get("Containers") or [None])[0]
        if not container:
            raise TemplateError(f"{model_id} has no PrimaryContainer")
        where = f"model {model_id}"
        model_url = self.resolver.string(container.get("ModelDataUrl"), f"{where}: ModelDataUrl")
        bucket, _, key = model_url.removeprefix("s3://").partition("/")
        found = self.objects.get((bucket, key))
        if found is None:
            raise TemplateError(f"{where}: its ModelDataUrl {model_url} is not an object the template deploys")
        image = self.resolver.string(container.get("Image"), f"{where}: Image")
        tag = image.rsplit(":", 1)[-1]
        code_dir = self.assets.by_key(tag, f"{where}: image {image}")
        if not code_dir.is_dir():
            raise TemplateError(f"{where}: the image's build context {code_dir} is not a folder")
        environment = {k: self.localize(str(v))
                       for k, v in self.resolver.resolve(container.get("Environment") or {}).items()}
        if model.get("VpcConfig") or model.get("EnableNetworkIsolation"):
            self.note("the model's network isolation")
        return Endpoint(logical_id=endpoint_id, name=name, model_data=self.materialize(found), code_dir=code_dir,
                        environment=environment, variant=str(first.get("VariantName", "AllTraffic")))

    def _by_physical_id(self, kind: str, name: str, where: str) -> str:
        for logical_id in self.of_type(kind):
            if self.resolver.physical_id(logical_id) == name:
                return logical_id
        raise TemplateError(f"{where}: no {kind} named {name} in the template")

    # - CloudFront -
    def website(self, distributions: Mapping[str, Mapping[str, Any]]) -> Website | None:
        if not distributions:
            return None
        first, *others = distributions
        for other in others:
            self.note(f"distribution {other} (the local stack serves one website)")
        self.handled.add(first)
        config = self.resolver.props(first).get("DistributionConfig") or {}
        where = f"distribution {first}"
        behavior = config.get("DefaultCacheBehavior") or {}
        origins = {o.get("Id"): o for o in config.get("Origins") or []}
        origin = origins.get(behavior.get("TargetOriginId"))
        if origin is None:
            raise TemplateError(f"{where}: its default behaviour targets origin {behavior.get('TargetOriginId')!r}, "
                                "which it does not define")
        domain = self.resolver.string(origin.get("DomainName"), f"{where}: origin DomainName")
        bucket = re.sub(r"\.s3([.-][a-z0-9-]+)?\.amazonaws\.com$", "", domain)
        if "S3OriginConfig" not in origin or bucket == domain:
            raise TemplateError(f"{where}: its origin {domain} is not an S3 bucket of the template")
        prefix = self.resolver.string(origin.get("OriginPath", ""), where).strip("/")
        objects = {}
        for (object_bucket, key), found in self.objects.items():
            if object_bucket == bucket and (not prefix or key.startswith(prefix + "/")):
                relative = key[len(prefix) + 1:] if prefix else key
                objects[relative] = SiteObject(relative, found.read, found.cache_control, found.content_type)
        for key, what in (("CacheBehaviors", "path-specific cache behaviours"), ("Aliases", "custom domain names"),
                          ("ViewerCertificate", "its certificate"), ("Logging", "standard logs"),
                          ("WebACLId", "its web ACL")):
            if config.get(key):
                self.note(f"CloudFront {what} ({first})")
        if behavior.get("ViewerProtocolPolicy") in ("redirect-to-https", "https-only"):
            self.note(f"CloudFront's HTTPS ({behavior['ViewerProtocolPolicy']}: served over plain HTTP)")
        for key, what in (("FunctionAssociations", "CloudFront Functions"),
                          ("LambdaFunctionAssociations", "Lambda@Edge")):
            if behavior.get(key):
                self.note(f"{what} of {first}")
        self.note("CloudFront caching")
        allowed = tuple(str(m).upper()
                        for m in self.resolver.resolve(behavior.get("AllowedMethods") or ["GET", "HEAD"]))
        headers, remove = self.headers_policy(behavior.get("ResponseHeadersPolicyId"), where)
        for oac in self.of_type("AWS::CloudFront::OriginAccessControl"):
            self.handled.add(oac)  # the bucket is reachable only through the distribution, locally too
        return Website(
            logical_id=first, domain=self.resolver.get_att(first, "DomainName"),
            default_root_object=config.get("DefaultRootObject") or None, allowed_methods=allowed,
            error_responses=tuple(
                ErrorResponse(error_code=int(e["ErrorCode"]),
                              response_code=None if e.get("ResponseCode") in (None, "") else int(e["ResponseCode"]),
                              page_path=e.get("ResponsePagePath") or None)
                for e in self.resolver.resolve(config.get("CustomErrorResponses") or [])),
            headers=headers, remove_headers=remove, objects=objects)

    def headers_policy(self, ref: Any, where: str) -> tuple[tuple[HeaderRule, ...], tuple[str, ...]]:
        if ref is None:
            return (), ()
        if not (isinstance(ref, dict) and ref.get("Ref") in self.resources):
            self.note(f"the managed response headers policy {ref} of {where}")
            return (), ()
        policy_id = ref["Ref"]
        self.handled.add(policy_id)
        config = self.resolver.resolve(self.resolver.props(policy_id).get("ResponseHeadersPolicyConfig") or {})
        security = config.get("SecurityHeadersConfig") or {}
        rules: list[HeaderRule] = []

        def add(name: str, value: str, part: Mapping[str, Any]) -> None:
            rules.append(HeaderRule(name, self.localize(value), bool(part.get("Override"))))

        if "ContentSecurityPolicy" in security:
            part = security["ContentSecurityPolicy"]
            add("Content-Security-Policy", str(part["ContentSecurityPolicy"]), part)
        if "StrictTransportSecurity" in security:
            part = security["StrictTransportSecurity"]
            value = f"max-age={int(part['AccessControlMaxAgeSec'])}"
            value += "; includeSubDomains" if part.get("IncludeSubdomains") else ""
            value += "; preload" if part.get("Preload") else ""
            add("Strict-Transport-Security", value, part)
        if "ContentTypeOptions" in security:
            add("X-Content-Type-Options", "nosniff", security["ContentTypeOptions"])
        if "FrameOptions" in security:
            add("X-Frame-Options", str(security["FrameOptions"]["FrameOption"]), security["FrameOptions"])
        if "ReferrerPolicy" in security:
            add("Referrer-Policy", str(security["ReferrerPolicy"]["ReferrerPolicy"]), security["ReferrerPolicy"])
        if "XSSProtection" in security:
            part = security["XSSProtection"]
            value = "1" if part.get("Protection") else "0"
            if part.get("Protection") and part.get("ModeBlock"):
                value += "; mode=block"
            elif part.get("Protection") and part.get("ReportUri"):
                value += f"; report={part['ReportUri']}"
            add("X-XSS-Protection", value, part)
        for item in (config.get("CustomHeadersConfig") or {}).get("Items") or []:
            add(str(item["Header"]), str(item["Value"]), item)
        for key, what in (("CorsConfig", "CORS"), ("ServerTimingHeadersConfig", "Server-Timing")):
            if config.get(key):
                self.note(f"the {what} settings of response headers policy {policy_id}")
        remove = tuple(str(item["Header"]) for item in (config.get("RemoveHeadersConfig") or {}).get("Items") or [])
        return tuple(rules), remove

    # - the rest, named -
    def remaining(self) -> None:
        counts: Counter[str] = Counter()
        for logical_id, resource in self.resources.items():
            kind = resource.get("Type", "?") if isinstance(resource, Mapping) else "?"
            if logical_id in self.handled or kind in _BOOKKEEPING:
                continue
            counts[kind] += 1
        for kind, count in sorted(counts.items()):
            what = _KIND_NAMES.get(kind, kind)
            self.note(f"{what} x{count}" if count > 1 else what)


def runtime_python(runtime: str) -> tuple[str, str]:
    """An interpreter of the Lambda runtime's Python version and its full version: this one if it
    is of that version, else the virtualenv ``make install`` builds for it (``.venv-py3.12`` for
    python3.12, the Lambda's packages in it), else this one all the same (the caller says so)."""
    if runtime == f"python{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable, platform.python_version()
    candidate = REPO_ROOT / f".venv-py{runtime.removeprefix('python')}" / "bin" / "python"
    if candidate.exists():
        try:
            version = subprocess.run([str(candidate), "-c", "import platform; print(platform.python_version())"],
                                     capture_output=True, text=True, timeout=60, check=True).stdout.strip()
            if f"python{version.rsplit('.', 1)[0]}" == runtime:
                return str(candidate), version
        except (OSError, subprocess.SubprocessError):
            pass
    return sys.executable, platform.python_version()


# Resources that are CDK's own bookkeeping, or the machinery of something emulated another way.
_BOOKKEEPING = {"AWS::CDK::Metadata"}
_KIND_NAMES = {
    "AWS::IAM::Role": "IAM roles (not enforced)",
    "AWS::IAM::Policy": "IAM policies (not enforced)",
    "AWS::Lambda::Permission": "Lambda permissions (not enforced)",
    "AWS::CloudWatch::Alarm": "CloudWatch alarms",
    "AWS::CloudWatch::Dashboard": "the CloudWatch dashboard",
    "AWS::Logs::LogGroup": "log groups (logs go to this terminal)",
    "AWS::S3::Bucket": "S3 buckets (their deployed files are served from cdk.out)",
    "AWS::S3::BucketPolicy": "bucket policies",
    "AWS::ApiGateway::Account": "API Gateway's CloudWatch role",
    "AWS::Lambda::Function": "Lambda functions behind no API method (custom resource handlers)",
    "AWS::Lambda::LayerVersion": "Lambda layers",
    "AWS::Lambda::Version": "published versions (the function as it is in cdk.out runs)",
    "AWS::Lambda::Alias": "aliases' provisioned concurrency (an alias runs its function)",
    "AWS::SNS::Topic": "SNS topics",
    "AWS::SNS::Subscription": "SNS subscriptions",
    "AWS::Scheduler::Schedule": "schedules",
    "AWS::ApplicationAutoScaling::ScalableTarget": "endpoint autoscaling",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "autoscaling policies",
}


def _settings_path(resource_path: str) -> str:
    """A MethodSettings ResourcePath ("/~1predict~1{proxy+}", "/*") as a resource path ("/predict/{proxy+}")."""
    if resource_path in ("/*", "*"):
        return "*"
    return resource_path[1:].replace("~1", "/") if resource_path != "/" else "/"


def _int(text: str, where: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        raise TemplateError(f"{where}: {text!r} is not a number") from None


# --- entry points ---------------------------------------------------------------------------------

def read_template(path: str | Path) -> dict[str, Any]:
    """The template at ``path`` as JSON, or TemplateError saying what to do."""
    path = Path(path)
    if not path.is_file():
        raise TemplateError(f"{path} does not exist. Synthesize the stack first: `make demo` does it, or "
                            f"`npx cdk synth --quiet -c model_dir=artifacts -o {path.parent}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TemplateError(f"{path} is not a JSON CloudFormation template: {exc}") from None
    if not isinstance(data, dict):
        raise TemplateError(f"{path} is not a CloudFormation template: it holds {type(data).__name__}, not an object")
    return data


def load_stack(path: str | Path, addresses: Addresses | None = None) -> LocalStackModel:
    """The stack in the template at ``path`` (``<StackName>.template.json``), with its assets beside it."""
    path = Path(path)
    data = read_template(path)
    return model_of(data, base_dir=path.parent, stack_name=path.name.removesuffix(".template.json"),
                    addresses=addresses, path=path)


def model_of(data: Mapping[str, Any], *, base_dir: str | Path, stack_name: str = "ServerlessSentiment",
             addresses: Addresses | None = None, path: Path | None = None) -> LocalStackModel:
    """The stack in the template ``data``, whose assets are in ``base_dir``."""
    # Absolute: the function's code and the server's are working directories of other processes.
    reader = _Reader(data, Path(base_dir).resolve(), stack_name, addresses or Addresses())
    try:
        return reader.read(path)
    except Unresolvable as exc:
        raise TemplateError(f"the template needs {exc}, which the local stack cannot know") from None
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise TemplateError(f"the template is malformed where the local stack reads it: "
                            f"{type(exc).__name__}: {exc}") from None


def extract_model(archive: Path, target: Path) -> Path:
    """Unpack ``model.tar.gz`` into ``target``, as SageMaker does into /opt/ml/model."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(target, filter="data")  # no absolute paths, links out or devices
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TemplateError(f"{archive} is not a model archive SageMaker could unpack: {exc}") from None
    return target


__all__ = ["Addresses", "Endpoint", "Firewall", "GatewayResponse", "HeaderRule", "Integration", "LambdaFunction",
           "LocalStackModel", "Method", "RateRule", "RestApi", "SiteObject", "Stage", "TemplateError", "Throttle",
           "Website", "extract_model", "load_stack", "model_of", "read_template"]
