"""The WSGCN options shared by ``wsss propagate --method gcn`` and ``wsss refine --method gcn``.

Declared once: :func:`with_gcn_options` adds them to a typer command's signature and hands their
values to the command as one ``gcn`` dictionary.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

#: ``(name, type, typer option)`` of every GCN option, in the order ``--help`` lists them.
GCN_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("graph", str | None, typer.Option(
        None, help="gcn: phi or phi_walk (no network; ours), sparse or dense T^(2^k) (default: "
        "sparse with --affinity, else phi).")),
    ("features", str | None, typer.Option(
        None, help="gcn: rgbxy or colour (no network; colour adds the CAMs), backbone or "
        "affinity (default: affinity with --affinity, backbone with --cam-checkpoint, else rgbxy).")),
    ("cam_checkpoint", Path | None, typer.Option(None, help="gcn: CAM run for backbone features.")),
    ("crf", bool, typer.Option(True, "--crf/--no-crf", help="gcn: dense CRF after upsampling.")),
    ("steps", int, typer.Option(250, min=1, help="gcn: training steps per image.")),
    ("entropy", float, typer.Option(
        10.0, min=0.0, help="gcn: entropy loss weight beta1 (0 = off).")),
    ("laplacian", float, typer.Option(
        0.01, min=0.0, help="gcn: Laplacian loss weight beta2 (0 = off).")),
    ("laplacian_on_log", bool, typer.Option(
        False, "--laplacian-on-log",
        help="gcn: Laplacian loss on log q (the authors' code), not q.")),
    ("entropy_mean", str, typer.Option(
        "entries", help="gcn: entropy loss as a mean over the unlabelled nodes' entries, nodes x "
        "outputs (entries, the authors' code) or over the nodes (nodes, eq. 5).")),
    ("outputs", int, typer.Option(
        21, min=0, help="gcn: outputs of every GCN (21: the paper's and the authors'; 0: 1 + "
        "the image's classes).")),
    ("init", str, typer.Option(
        "zero_output", help="gcn: zero_output (W2 = 0, a uniform first prediction) or glorot.")),
    ("laplacian_graph", str, typer.Option(
        "phi", help="gcn: pairs of the Laplacian loss: phi (eq. 7) or adjacency (the GCN's graph "
        "A, the paper's side experiment).")),
    ("phi_variant", str, typer.Option(
        "paper", help="gcn: Phi of the paper, the authors' code (colours/255, divisors 12, 20), "
        "or image (colour scale from the image; ours).")),
    ("topk", int, typer.Option(32, min=1, help="gcn graph sparse: values kept per row.")),
    ("seed", int, typer.Option(
        0, min=0, help="gcn: run seed; each image's GCN is seeded from it and the image id.")),
)  # fmt: skip


def with_gcn_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the options of :data:`GCN_OPTIONS` to ``command``'s parameters (before ``device``, or
    last); ``command`` receives their values as ``gcn: dict[str, Any]``."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "gcn"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                               annotation=kind) for name, kind, option in GCN_OPTIONS]  # fmt: skip
    names = [p.name for p in own]
    at = names.index("device") if "device" in names else len(own)
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
    params[at:at] = added

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        gcn = {name: values.pop(name) for name, _, _ in GCN_OPTIONS}
        command(**values, gcn=gcn)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def gcn_options(*, graph: str | None, affinity: Path | None, **values: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`wsss.gcn.create_gcn_propagator` from the CLI values."""
    return {"graph": graph or ("sparse" if affinity else "phi"), "affinity": affinity, **values}
