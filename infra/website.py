"""The web page: web/ in a private bucket behind CloudFront, with its generated config.json."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, Duration, IgnoreMode, Validations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra.artifacts import DEPLOYMENT_MEMORY_MB
from infra.storage import private_bucket, removal_policy


class WebsiteError(ValueError):
    """The web/ folder is missing its page."""


def content_security_policy(api_origin: str) -> str:
    """The page loads only its own files and talks only to its own API."""
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        f"connect-src 'self' {api_origin}",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


class Website(Construct):
    """A private bucket served only through CloudFront (origin access control), HTTPS only.

    The distribution is created first, so its domain can be handed to the API as the allowed
    CORS origin; ``publish`` then uploads the page with a config.json naming the API's URL.
    """

    def __init__(self, scope: Construct, construct_id: str, *, web_dir: Path, access_logs: s3.IBucket,
                 api_origin: str, destroy_on_delete: bool) -> None:
        super().__init__(scope, construct_id)
        if not (web_dir / "index.html").is_file():
            raise WebsiteError(f"{web_dir / 'index.html'} is missing: the website has no page to serve.")
        self.web_dir = web_dir
        self.destroy_on_delete = destroy_on_delete

        self.bucket = private_bucket(
            self, "Bucket", destroy_on_delete=destroy_on_delete,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="website-bucket/",
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self, "SecurityHeaders",
            comment="Sentiment demo page: CSP limited to its API, HSTS, no framing, no sniffing.",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(api_origin), override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self, "Distribution",
            comment="Movie review sentiment demo page",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=headers,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=access_logs,
            log_file_prefix="cloudfront/",
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        Validations.of(self.distribution).acknowledge(
            Acknowledgment(id="AwsSolutions-CFR1",
                           reason="A public demo page for every country; no geo restriction is wanted."),
            Acknowledgment(id="AwsSolutions-CFR2",
                           reason="Static public page; the API behind it is throttled. WAF's fixed "
                                  "monthly cost would dominate the demo's bill."),
            Acknowledgment(id="AwsSolutions-CFR4",
                           reason="No custom domain: the default *.cloudfront.net certificate is used, "
                                  "whose TLS policy CloudFront does not let a distribution change."),
        )

    def publish(self, api_url: str, log_retention: logs.RetentionDays) -> s3deploy.BucketDeployment:
        """Upload web/ and a config.json holding the API's URL (cached for 5 minutes at most)."""
        return s3deploy.BucketDeployment(
            self, "Publish",
            sources=[
                s3deploy.Source.asset(str(self.web_dir), ignore_mode=IgnoreMode.DOCKER,
                                      exclude=["config.json", "**/.*"]),
                s3deploy.Source.json_data("config.json", {"apiUrl": api_url}),
            ],
            destination_bucket=self.bucket,
            # A short max-age instead of an invalidation after each deploy: CDK's invalidation
            # grant covers every distribution in the account ("*"), this needs no grant at all.
            cache_control=[s3deploy.CacheControl.max_age(Duration.minutes(5))],
            memory_limit=DEPLOYMENT_MEMORY_MB,
            log_group=logs.LogGroup(
                self, "PublishLogs", retention=log_retention,
                removal_policy=removal_policy(self.destroy_on_delete)),
        )
