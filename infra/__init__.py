"""The CDK app: one stack (infra.stack) composed of model artifacts, endpoint, API and website."""

from infra.stack import SentimentStack, create_app

__all__ = ["SentimentStack", "create_app"]
