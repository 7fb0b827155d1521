"""Where tests find the project's shared read-only data (real tokenizers, LIQE's lists, ...).

CI clones the repository next to a copy of ``shared/``, so the default is ``../shared/data``
relative to the repository root; ``C2S_SHARED_DATA`` points elsewhere. Without the files a test
skips on a developer's machine, but fails when the ``CI`` environment variable is set: there a
missing folder is a broken setup, not a reason to test less.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("C2S_SHARED_DATA") or REPOSITORY.parent / "shared" / "data")


def require(*paths: Path) -> None:
    """Skip the calling test (fail it under CI) unless every path exists."""
    missing = [str(p) for p in paths if not p.exists()]
    if not missing:
        return
    message = (f"shared data missing: {', '.join(missing)} (the shared folder is ../shared/data beside the "
               "repository, or $C2S_SHARED_DATA)")
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must provide ../shared beside the clone", pytrace=False)
    pytest.skip(message)
