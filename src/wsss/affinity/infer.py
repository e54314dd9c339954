"""Per-image affinities of a trained network on the random walk's window (SPEC section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from wsss.affinity.irn import IRNetAffinity, boundary_to_affinity
from wsss.affinity.psa import AffinityNet, feature_to_affinity
from wsss.affinity.train import AffinityConfig, build_affinity_model
from wsss.cam.model import build_model as build_cam_model
from wsss.cam.train import FINAL_FILE
from wsss.cam.train import TrainConfig as CamConfig
from wsss.engine.training import load_checkpoint
from wsss.errors import WsssError
from wsss.graph.window import gather_window

__all__ = ["ImageAffinity", "image_affinity"]


@dataclass(frozen=True)
class ImageAffinity:
    """The affinity graph of one image.

    Attributes:
        weights: Affinity of every edge of ``window_edges(*size, radius)``, ``(E,)`` in [0, 1].
        size: Grid ``(h, w)`` = ``(ceil(H / stride), ceil(W / stride))``.
        stride: 4 (IRNet) or 8 (AffinityNet).
        radius: Window radius.
        boundary: IRNet's boundary map ``(h, w)`` (None for AffinityNet).
    """

    weights: torch.Tensor
    size: tuple[int, int]
    stride: int
    radius: float
    boundary: torch.Tensor | None = None


@torch.no_grad()
def image_affinity(model: nn.Module, image: torch.Tensor, *, radius: float = 5) -> ImageAffinity:
    """Affinities of one image within ``radius`` at the network's stride.

    IRNet: boundary of the image and its flip (logits averaged), ``a = 1 - max`` on the path.
    AffinityNet: ``exp(-||f_i - f_j||)`` of the feature map.

    Args:
        model: An :class:`~wsss.affinity.irn.IRNetAffinity` or
            :class:`~wsss.affinity.psa.AffinityNet` in eval mode.
        image: The normalised image on the model's device.
        radius: Window radius of the random walk (5).

    Shapes:
        image: ``(3, H, W)``.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got {tuple(image.shape)}")
    if isinstance(model, IRNetAffinity):
        boundary = model.boundary(image)
        maps = boundary_to_affinity(boundary[None], radius)[0]
        size = (int(boundary.shape[0]), int(boundary.shape[1]))
        return ImageAffinity(gather_window(maps, radius), size, model.stride, radius, boundary)
    if isinstance(model, AffinityNet):
        features = model.features(image[None])
        maps = feature_to_affinity(features, radius, distance=model.distance)[0]  # type: ignore[arg-type]
        size = (int(features.shape[-2]), int(features.shape[-1]))
        return ImageAffinity(gather_window(maps, radius), size, model.stride, radius)
    raise TypeError(f"not an affinity network: {type(model).__name__}")


def load_affinity(
    run: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, AffinityConfig]:
    """The trained affinity network of a run (eval mode, on ``device``) and its configuration.

    Args:
        run: ``final.pt`` or the run directory.
        device: Where to put the model.

    Raises:
        WsssError: missing or unreadable file, or not an affinity run.
    """
    path = Path(run)
    path = path / FINAL_FILE if path.is_dir() else path
    state = load_checkpoint(path)
    try:
        config = AffinityConfig.from_dict(state["config"])
        cam = CamConfig.from_dict(state["cam_config"])
        backbone = build_cam_model(cam, int(state["num_labels"]), pretrained=False).backbone
        model = build_affinity_model(config, backbone, freeze_bn=cam.freeze_bn)
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise WsssError(f"not a trained affinity network ({err})", path) from None
    return model.to(device).eval(), config
