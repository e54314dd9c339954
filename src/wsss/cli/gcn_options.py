"""The WSGCN options shared by ``wsss propagate --method gcn`` and ``wsss refine --method gcn``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

GRAPH = typer.Option(
    None, help="gcn: phi or phi_walk (no network; ours), sparse or dense T^(2^k) (default: sparse "
    "with --affinity, else phi).",
)  # fmt: skip
FEATURES = typer.Option(
    None, help="gcn: colour (no network), backbone or affinity (default: from the runs)."
)
CAM_CHECKPOINT = typer.Option(None, help="gcn: CAM run for backbone features.")
CRF = typer.Option(True, "--crf/--no-crf", help="gcn: dense CRF after upsampling.")
STEPS = typer.Option(250, min=1, help="gcn: training steps per image.")
ENTROPY = typer.Option(10.0, min=0.0, help="gcn: entropy loss weight beta1 (0 = off).")
LAPLACIAN = typer.Option(0.01, min=0.0, help="gcn: Laplacian loss weight beta2 (0 = off).")
LAPLACIAN_ON_LOG = typer.Option(
    False, "--laplacian-on-log", help="gcn: Laplacian loss on log q (the authors' code), not q."
)
ENTROPY_MEAN = typer.Option(
    "nodes", help="gcn: entropy loss as a mean over the unlabelled nodes (eq. 5) or over their "
    "entries, nodes x outputs (entries, the authors' code).",
)  # fmt: skip
OUTPUTS = typer.Option(
    None, min=1, help="gcn: outputs of every GCN (the authors' code: 21; default: 1 + the "
    "image's classes).",
)  # fmt: skip
INIT = typer.Option(
    "zero_output", help="gcn: zero_output (W2 = 0, a uniform first prediction) or glorot."
)
LAPLACIAN_GRAPH = typer.Option(
    "phi", help="gcn: pairs of the Laplacian loss: phi (eq. 7) or adjacency (the GCN's graph A, "
    "the paper's side experiment).",
)  # fmt: skip
PHI_VARIANT = typer.Option(
    "paper", help="gcn: Phi of the paper, the authors' code, or image (colour scale from the "
    "image; ours).",
)  # fmt: skip
TOPK = typer.Option(32, min=1, help="gcn graph sparse: values kept per row.")
SEED = typer.Option(
    0, min=0, help="gcn: run seed; each image's GCN is seeded from it and the image id."
)


def gcn_options(*, graph: str | None, affinity: Path | None, **values: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`wsss.gcn.create_gcn_propagator` from the CLI values."""
    return {"graph": graph or ("sparse" if affinity else "phi"), "affinity": affinity, **values}
