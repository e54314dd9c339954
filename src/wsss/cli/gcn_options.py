"""The WSGCN options shared by ``wsss propagate --method gcn`` and ``wsss refine --method gcn``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

GRAPH = typer.Option(
    None, help="gcn: phi (no network), sparse or dense T^(2^k) (default: sparse with --affinity, "
    "else phi).",
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
PHI_VARIANT = typer.Option("paper", help="gcn: Phi of the paper or the authors' code.")
TOPK = typer.Option(32, min=1, help="gcn graph sparse: values kept per row.")
SEED = typer.Option(0, min=0, help="gcn: seed of every image's GCN.")


def gcn_options(*, graph: str | None, affinity: Path | None, **values: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`wsss.gcn.create_gcn_propagator` from the CLI values."""
    return {"graph": graph or ("sparse" if affinity else "phi"), "affinity": affinity, **values}
