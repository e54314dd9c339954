"""Build a :class:`~wsss.gcn.infer.GcnPropagator` from plain options (CLI, configuration)."""

from __future__ import annotations

from pathlib import Path

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
    crf: bool = True,
    steps: int = 250,
    entropy: float = 10.0,
    laplacian: float = 0.01,
    laplacian_on_log: bool = False,
    phi_variant: str = "paper",
    topk: int = 32,
    beta: float = 10.0,
    exp_times: int = 8,
    seed: int = 0,
    device: str = "cpu",
) -> GcnPropagator:
    """A GCN propagator; ``features`` defaults to ``affinity`` with an affinity run, else
    ``backbone`` with a CAM checkpoint, else ``colour``.

    Raises:
        WsssError: an option that needs a network that was not given, or bad values.
    """
    from wsss.engine.training import resolve_device

    dev = resolve_device(device)
    if features is None:
        features = "affinity" if affinity else "backbone" if cam_checkpoint else "colour"
    affinity_model = backbone = None
    run = ""
    if affinity is not None:
        from wsss.affinity.infer import load_affinity

        affinity_model, config = load_affinity(affinity, dev)
        if config.method != "irn":
            raise WsssError(f"the GCN graph needs an IRNet affinity run (stride 4), got "
                            f"{config.method!r}", affinity)  # fmt: skip
        run = str(affinity)
    if cam_checkpoint is not None:
        from wsss.cam.infer import load_trained

        backbone = load_trained(cam_checkpoint, dev)[0].backbone
        run = run or str(cam_checkpoint)
    losses = LossWeights(entropy=entropy, laplacian=laplacian, laplacian_on_log=laplacian_on_log)
    try:
        return GcnPropagator(graph=graph, features=features, crf=crf, affinity_model=affinity_model,
                             backbone=backbone, settings=GcnSettings(steps=steps, losses=losses),
                             topk=topk, beta=beta, exp_times=exp_times, phi_variant=phi_variant,
                             seed=seed, device=dev, run=run)  # fmt: skip
    except ValueError as err:
        raise WsssError(f"bad GCN options: {err}") from None
