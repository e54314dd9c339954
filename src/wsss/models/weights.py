"""ImageNet weights of the torchvision backbones, from a local file first.

A backbone's weights are looked up, in order, in the file or folder the user names (``--weights``,
``<section>.weights`` in a run configuration), then in torch's cache
(``$TORCH_HOME/hub/checkpoints``, where torchvision keeps its downloads); only then are they
downloaded into that cache. Without network (an offline GPU node, this CPU machine) a missing file
is a one-line error naming the file, the address it comes from and the two ways to provide it.
Loading uses ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Any

import torch

from wsss.errors import WsssError

__all__ = ["IMAGENET_URLS", "imagenet_state_dict", "locate_weights", "require_weights"]

#: torchvision's ``IMAGENET1K_V1`` weights of each backbone: the address their file comes from.
IMAGENET_URLS: dict[str, str] = {
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
}


def cache_dir() -> Path:
    """torch's checkpoint cache (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _file_name(backbone: str) -> str:
    if backbone not in IMAGENET_URLS:
        raise WsssError(f"backbone {backbone!r} has no torchvision ImageNet weights")
    return IMAGENET_URLS[backbone].rsplit("/", 1)[1]


def locate_weights(backbone: str, weights: str | Path | None = None) -> Path:
    """Where the weights of ``backbone`` are or would be: ``weights`` itself (a file), the file
    of that name in ``weights`` (a folder), or in torch's cache. The file may not exist."""
    name = _file_name(backbone)
    if weights is not None:
        given = Path(weights)
        return given / name if given.is_dir() else given
    return cache_dir() / name


def require_weights(
    backbone: str, weights: str | Path | None = None, *, download: bool = True
) -> Path:
    """The weights file of ``backbone``, downloaded into torch's cache if missing and allowed.

    Raises:
        WsssError: the file the user named does not exist, or the file is not cached and cannot
            be downloaded; the message names the file, its address and the two ways to provide it.
    """
    path = locate_weights(backbone, weights)
    if path.is_file():
        return path
    url = IMAGENET_URLS[backbone]
    if weights is not None:
        raise WsssError(f"no ImageNet weights of {backbone} here (expected {path.name} from {url})",
                        path)  # fmt: skip
    reason = "downloads are off"
    if download:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), progress=False)
            return path
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = f"download failed: {getattr(err, 'reason', err)}"
    raise WsssError(
        f"ImageNet weights of {backbone} missing ({reason}): put {path.name} from {url} into "
        f"{path.parent}, or give its file or folder with --weights PATH (run config: "
        f"<section>.weights), or train without them (--no-pretrained / <section>.pretrained: false)"
    )


def imagenet_state_dict(backbone: str, weights: str | Path | None = None) -> dict[str, Any]:
    """The ImageNet state dict of ``backbone`` (see :func:`require_weights`).

    Raises:
        WsssError: missing (see above) or unreadable file.
    """
    path = require_weights(backbone, weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise WsssError(f"unreadable weights file ({str(err)[:200]})", path) from None
    if not isinstance(state, dict):
        raise WsssError("a weights file must hold a state dict", path)
    return state
