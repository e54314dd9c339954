"""The options a folder's outputs were made with, saved once and checked on every rerun."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsss.engine.distributed import is_main_process
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text

__all__ = ["check_saved_settings"]


def check_saved_settings(
    path: str | Path, settings: dict[str, Any], *, what: str, noun: str = "settings"
) -> None:
    """Save ``settings`` as JSON at ``path`` (rank 0), or refuse if the saved ones differ.

    Args:
        path: The JSON file inside the output folder.
        settings: Options of this call (values JSON can't hold are saved as ``str``).
        what: What the folder holds, for the messages (e.g. ``"an ablation"``).
        noun: What the messages call the settings (``"options"`` for predictions).

    Raises:
        WsssError: the file is unreadable, or holds other settings (resume would mix outputs);
            the message lists the keys that differ as ``key: (saved, now)``.
    """
    path = Path(path)
    text = json.dumps(settings, indent=2, default=str) + "\n"
    settings = json.loads(text)
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise WsssError(f"unreadable {noun} of {what} ({err})", path) from None
        if saved != settings:
            diff = _differences(saved, settings)
            raise WsssError(f"this folder holds {what} made with other {noun} (saved, now): {diff}",
                            path, hint="use another --out, or delete the folder")  # fmt: skip
    elif is_main_process():
        atomic_write_text(path, text)


def _differences(saved: Any, now: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(saved, dict):
        return {"(file)": (saved, now)}
    keys = sorted(set(saved) | set(now))
    return {k: (saved.get(k), now.get(k)) for k in keys if saved.get(k) != now.get(k)}
