"""The model hub: catalog, sources, fallback chain, retries, cache and record.

Other parts use only what this module exports::

    hub = ModelHub(config, writer)          # writer=None: record nothing
    for spec in hub.enabled():
        fetched = hub.fetch(spec.name)      # FetchedModel, or raises ModelUnavailable
        ...load fetched.path...
        hub.record_state(spec.name, "ready", load_seconds=1.2)
"""

from __future__ import annotations

from .catalog import ModelSpec, SourceSpec, load_catalog
from .hub import FetchedModel, ModelHub

__all__ = ["FetchedModel", "ModelHub", "ModelSpec", "SourceSpec", "load_catalog"]
