"""Where the real VOC samples of the workplace live (read-only, outside the repository).

Looked up in order: ``$WSSS_VOC_SAMPLES``, ``<repo>/../shared/data/voc-samples/VOC2012``, and
``/work/shared/data/voc-samples/VOC2012``; tests that need them skip when none exists.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    *([Path(os.environ["WSSS_VOC_SAMPLES"])] if os.environ.get("WSSS_VOC_SAMPLES") else []),
    _REPO.parent / "shared" / "data" / "voc-samples" / "VOC2012",
    Path("/work/shared/data/voc-samples/VOC2012"),
]

VOC_SAMPLES = next((p for p in _CANDIDATES if (p / "JPEGImages").is_dir()), _CANDIDATES[0])
