"""The real public measurement data the tests check against.

It lives in ``shared/data`` beside the checkout (every development machine and
CI run has it); ``ROOTCANARY_SHARED_DATA`` points elsewhere. Missing data is
an error, never a skip: the differential and reproduction tests are the point.
"""

from __future__ import annotations

import os
from pathlib import Path

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data() -> Path:
    path = Path(os.environ.get("ROOTCANARY_SHARED_DATA", _DEFAULT))
    if not (path / "atlas" / "results.jsonl").is_file():
        raise FileNotFoundError(
            f"the shared measurement data is not at {path}: check out the project "
            "beside shared/, or set ROOTCANARY_SHARED_DATA"
        )
    return path


SHARED_DATA = shared_data()
ATLAS_RESULTS = SHARED_DATA / "atlas" / "results.jsonl"
RFC8145 = SHARED_DATA / "rfc8145"
