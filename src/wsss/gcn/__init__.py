"""WSGCN: per-image GCN feature propagation (Pan et al., ICASSP 2021; SPEC section 4).

=============================  ====================================================================
:mod:`~wsss.gcn.phi`           the low-level affinity ``Phi`` of eq. (7) (5x5 window)
:mod:`~wsss.gcn.graphs`        the graph ``A``: exact dense / sparse ``T^(2^k)``, or ``Phi``
:mod:`~wsss.gcn.features`      node features: colour + position + CAMs, CAM backbone, IRNet
:mod:`~wsss.gcn.model`         the 2-layer GCN of eq. (1), per-image weights batched
:mod:`~wsss.gcn.losses`        eqs. (2)-(6): fg / bg cross-entropy, entropy, Laplacian
:mod:`~wsss.gcn.train`         per-image training, many images at once (block-diagonal graph)
:mod:`~wsss.gcn.infer`         image + CAM file -> full-size label map (upsampling, dense CRF)
=============================  ====================================================================
"""

from wsss.gcn.features import (
    FEATURE_KINDS,
    affinity_features,
    backbone_features,
    colour_features,
)
from wsss.gcn.graphs import (
    GRAPH_KINDS,
    dense_power_graph,
    normalize_adjacency,
    phi_graph,
    sparse_power_graph,
    symmetric_max,
    topk_rows,
)
from wsss.gcn.infer import GcnPropagator, seeds_to_outputs, upsample_probs
from wsss.gcn.losses import (
    PADDING,
    UNLABELLED,
    LossWeights,
    background_loss,
    entropy_loss,
    foreground_loss,
    laplacian_loss,
    laplacian_operator,
    wsgcn_loss,
)
from wsss.gcn.model import BatchedGCN, gcn_forward
from wsss.gcn.phi import PHI_VARIANTS, phi_edges, phi_matrix, square_offsets
from wsss.gcn.propagate import create_gcn_propagator
from wsss.gcn.train import GcnProblem, GcnSettings, train_gcn

__all__ = [
    "FEATURE_KINDS",
    "GRAPH_KINDS",
    "PADDING",
    "PHI_VARIANTS",
    "UNLABELLED",
    "BatchedGCN",
    "GcnProblem",
    "GcnPropagator",
    "GcnSettings",
    "LossWeights",
    "affinity_features",
    "backbone_features",
    "background_loss",
    "colour_features",
    "create_gcn_propagator",
    "dense_power_graph",
    "entropy_loss",
    "foreground_loss",
    "gcn_forward",
    "laplacian_loss",
    "laplacian_operator",
    "normalize_adjacency",
    "phi_edges",
    "phi_graph",
    "phi_matrix",
    "seeds_to_outputs",
    "sparse_power_graph",
    "square_offsets",
    "symmetric_max",
    "topk_rows",
    "train_gcn",
    "upsample_probs",
    "wsgcn_loss",
]
