"""Fake model hubs on 127.0.0.1 for tests, and the tiny models they serve.

- :mod:`.server`   FakeHub: request counting and fault switches (503, 429 +
  Retry-After, 401, 404, reset mid-body, slow body, wrong bytes)
- :mod:`.hubs`     TFHubFake, KaggleFake, HFFake, FileHub (an HTTPS mirror)
- :mod:`.builders` a MUSIQ-signature SavedModel, a torch state dict, a
  safetensors file, tarballs (including one with a ``../`` member)
- :mod:`.fixtures` pytest fixtures (tfhub_fake, kaggle_fake, hf_fake,
  https_fake, all_fakes, musiq_savedmodel) and ``fast_config``
- ``python -m tests.fakehubs`` runs fakes as a separate process (see __main__)
"""

from .hubs import FileHub, HFFake, KaggleFake, TFHubFake
from .server import Fault, FakeHub, Reply, Request

__all__ = ["FakeHub", "Fault", "FileHub", "HFFake", "KaggleFake", "Reply", "Request", "TFHubFake"]
