"""Fully-connected (dense) CRF in pure torch: permutohedral-lattice filtering and mean field.

A drop-in for ``pydensecrf`` as used by IRNet, AffinityNet and WSGCN; see ``docs/crf.md``.
"""

from wsss.crf.dense_crf import (
    PRESETS,
    DenseCRF,
    crf_inference_label,
    crf_inference_probs,
    dense_crf,
)
from wsss.crf.lattice import GaussianKernel, Lattice, build_lattice, lattice_filter
from wsss.crf.unary import unary_from_labels, unary_from_probs

__all__ = [
    "PRESETS",
    "DenseCRF",
    "GaussianKernel",
    "Lattice",
    "build_lattice",
    "crf_inference_label",
    "crf_inference_probs",
    "dense_crf",
    "lattice_filter",
    "unary_from_labels",
    "unary_from_probs",
]
