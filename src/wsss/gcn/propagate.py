"""Build a :class:`~wsss.gcn.infer.GcnPropagator` from plain options (CLI, configuration)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from wsss.errors import WsssError
from wsss.gcn.infer import GcnPropagator
from wsss.gcn.losses import LossWeights
from wsss.gcn.train import GcnSettings

__all__ = ["create_gcn_propagator"]


def create_gcn_propagator(
    *,
    graph: str = "phi",
    features: str | None = None,
    affinity: str | Path | None = None,
    cam_checkpoint: str | Path | None = None,
    backbone: nn.Module | None = None,
    crf: bool = True,
    steps: int = 250,
    entropy: float = 10.0,
    laplacian: float = 0.01,
    laplacian_on_log: bool = False,
    entropy_mean: str = "entries",
    laplacian_graph: str = "phi",
    init: str = "zero_output",
    outputs: int = 21,
    phi_variant: str = "paper",
    topk: int = 32,
    beta: float = 10.0,
    exp_times: int = 8,
    seed: int = 0,
    device: str = "cpu",
) -> GcnPropagator:
    """A GCN propagator; ``features`` defaults to ``affinity`` with an affinity run, else
    ``backbone`` with a CAM checkpoint or a ``backbone`` (a :class:`~wsss.models.backbones.Backbone`
    in eval mode, e.g. the ImageNet Lite0; it takes the checkpoint's place), else ``rgbxy``
    (colour and position; :mod:`wsss.gcn.features` says why not the CAMs).

    Raises:
        WsssError: an option that needs a network that was not given, or bad values.
    """
    from wsss.engine.training import resolve_device

    dev = resolve_device(device)
    if features is None:
        has_backbone = cam_checkpoint or backbone is not None
        features = "affinity" if affinity else "backbone" if has_backbone else "rgbxy"
    affinity_model = None
    run = ""
    if affinity is not None:
        from wsss.affinity.infer import load_affinity

        affinity_model, config = load_affinity(affinity, dev)
        if config.method != "irn":
            raise WsssError(f"the GCN graph needs an IRNet affinity run (stride 4), got "
                            f"{config.method!r}", affinity)  # fmt: skip
        run = str(affinity)
    if cam_checkpoint is not None and backbone is None:
        from wsss.cam.infer import load_trained

        backbone = load_trained(cam_checkpoint, dev)[0].backbone
        run = run or str(cam_checkpoint)
    try:
        losses = LossWeights(
            entropy=entropy,
            laplacian=laplacian,
            laplacian_on_log=laplacian_on_log,
            entropy_mean=entropy_mean,
        )
        settings = GcnSettings(steps=steps, losses=losses, init=init, outputs=outputs)
        return GcnPropagator(graph=graph, features=features, crf=crf, affinity_model=affinity_model,
                             backbone=backbone, settings=settings, topk=topk, beta=beta,
                             exp_times=exp_times, phi_variant=phi_variant,
                             laplacian_graph=laplacian_graph, seed=seed, device=dev,
                             run=run)  # fmt: skip
    except ValueError as err:
        raise WsssError(f"bad GCN options: {err}") from None
