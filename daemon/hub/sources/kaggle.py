"""Kaggle Models, through kagglehub (its cache in KAGGLEHUB_CACHE, its auth:
KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json).

kagglesdk picks its endpoint from KAGGLE_API_ENVIRONMENT; keepers adds
KEEPERS_KAGGLE_ENDPOINT to point the environment in effect at a mirror or a
test server on another address.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..catalog import SourceSpec
from .base import ENV_KAGGLE_ENDPOINT, FetchContext, run_with_deadline


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    import kagglehub
    from kagglesdk import kaggle_env

    endpoint = os.environ.get(ENV_KAGGLE_ENDPOINT)
    if endpoint:
        kaggle_env._env_to_endpoint[kaggle_env.get_env()] = endpoint.rstrip("/")
    # kagglesdk sends its API calls without a read timeout: bound the whole call.
    deadline = max(ctx.timeout * 20, 60.0)
    path = run_with_deadline(lambda: kagglehub.model_download(spec.ref), deadline, f"kaggle {spec.ref}")
    return Path(path)
