#!/usr/bin/env python3
"""CDK entry point (`npx cdk synth`, `npx cdk deploy`); settings are context keys, see infra/config.py."""

import sys

from infra import create_app
from infra.config import ConfigError
from infra.website import WebsiteError
from sentiment.artifacts import ArtifactError

try:
    app = create_app()
except (ArtifactError, ConfigError, WebsiteError) as err:
    sys.exit(f"error: {err}")  # a clear one-line cause instead of a traceback
app.synth()
