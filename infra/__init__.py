"""The CDK app: one stack (infra.stack) composed of model artifacts, endpoint, API and website.

``create_app`` and ``SentimentStack`` load aws_cdk (and its Node.js process) on first use, so
that ``infra.gateway_responses``, which the local stack shares, imports without them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SentimentStack", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from infra import stack

        return getattr(stack, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
