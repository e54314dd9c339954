"""The GCN problems of the side-by-side benches: the real VOC photos, and the synthetic graph of
``bench/propagation_gcn.py``.

**Photos** (``photo_problem``): one of the 6 VOC 2012 photos with ground truth
(:data:`bench_common.VOC_SAMPLES`), optionally resized so that its longer side is ``longer``
pixels (Lanczos; the mask nearest). On its stride-4 grid ``(ceil(H/4), ceil(W/4))`` (500x375:
94x125 = 11,750 nodes):

* the graph ``A``: graph (c), ``Phi`` of eq. (7) on the photo downscaled to the grid, as
  ``row-normalise(max(Phi, Phi^T) + I)`` (:func:`wsss.gcn.graphs.phi_graph`): the GCN graph that
  needs no trained network, 25 non-zeros per row;
* the Laplacian pairs: ``Phi`` in the 5x5 window (:func:`wsss.gcn.phi.phi_edges`);
* node features ``V``: 160 channels (as IRNet's edge features, WSGCN-I) of a fixed random 8x8
  convolution of the photo at stride 4, then ReLU: image-dependent, spatially coherent, no
  trained network; seed 0 for every photo;
* seeds from the ground truth: a node takes the class of the pixel at its cell's centre where
  every node of its 7x7 grid window has that class (confident interiors, as CAM seeds are),
  unlabelled elsewhere; outputs are background + the image's classes.

**Synthetic** (``synthetic_problem``): ``bench/propagation_gcn.py``'s problem: blocky random
affinities on the radius-5 window, graph (b) (top-k pruned sparse ``T^256``, 32 per row, about
54 non-zeros per row after symmetrising), random features, seeds on half of the nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from propagation_gcn import _affinity, _problem
from wsss.data.voc import VOCSegmentation
from wsss.gcn.graphs import phi_graph, sparse_power_graph
from wsss.gcn.phi import phi_edges
from wsss.gcn.train import GcnProblem
from wsss.seeds.resize import cam_size, downscale_image

#: Feature width (IRNet's edge branch: 160 channels).
FEATURES = 160
#: Side of the window a node's 7x7 neighbourhood must agree over to be a seed.
SEED_WINDOW = 7


@dataclass
class NamedProblem:
    """A problem with where it came from."""

    name: str
    grid: tuple[int, int]
    problem: GcnProblem
    seed_coverage: float

    def describe(self) -> dict[str, object]:
        """JSON-ready description."""
        p = self.problem
        return {"input": self.name, "grid": list(self.grid), "nodes": self.grid[0] * self.grid[1],
                "features": p.features.shape[1], "outputs": p.num_outputs,
                "graph_nnz": int(p.adjacency._nnz()), "seed_coverage": self.seed_coverage}  # fmt: skip


def photo_ids(root: Path) -> list[str]:
    """The ids of the ``samples`` split."""
    return list(VOCSegmentation(root, split="samples").ids)


def _resized(image: np.ndarray, mask: np.ndarray, longer: int | None):
    if longer is None or max(image.shape[:2]) == longer:
        return image, mask
    scale = longer / max(image.shape[:2])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    img = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    return img, np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))


def conv_features(image: np.ndarray, grid: tuple[int, int], channels: int = FEATURES):
    """ReLU of a fixed random 8x8 convolution (seed 0) at stride 4: ``(h w, channels)``."""
    h, w = grid
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255 - 0.5
    x = F.pad(x, (0, 4 * w - image.shape[1], 0, 4 * h - image.shape[0]), mode="replicate")
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(channels, 3, 8, 8, generator=gen) / math.sqrt(3 * 64)
    out = torch.relu(F.conv2d(x, weight, stride=4, padding=2))[0]
    return out.reshape(channels, h * w).transpose(0, 1).contiguous()


def gt_seeds(mask: np.ndarray, grid: tuple[int, int]) -> tuple[torch.Tensor, int]:
    """Seeds (output indices, 255 unlabelled) from a GT mask, and ``K``."""
    h, w = grid
    ys = np.minimum(np.arange(h) * 4 + 2, mask.shape[0] - 1)
    xs = np.minimum(np.arange(w) * 4 + 2, mask.shape[1] - 1)
    cls = torch.from_numpy(mask[np.ix_(ys, xs)].astype(np.float32))[None, None]
    pad = SEED_WINDOW // 2
    high = F.max_pool2d(cls, SEED_WINDOW, 1, pad)
    low = -F.max_pool2d(-cls, SEED_WINDOW, 1, pad)
    keys = [int(c) for c in np.unique(mask) if c not in (0, 255)]
    lut = torch.full((256,), 255, dtype=torch.int64)
    lut[0] = 0
    for index, key in enumerate(keys, start=1):
        lut[key] = index
    seeds = torch.where((high == low) & (cls != 255), lut[cls.long()], 255).reshape(-1)
    return seeds, 1 + len(keys)


def photo_problem(root: Path, image_id: str, longer: int | None = None,
                  dtype: torch.dtype = torch.float32) -> NamedProblem:  # fmt: skip
    """A photo's problem (module docstring), at its size or with its longer side ``longer``."""
    sample = VOCSegmentation(root, split="samples").load(image_id)
    image, mask = _resized(sample.image, sample.mask, longer)
    grid = cam_size(image.shape[:2])
    small = torch.from_numpy(downscale_image(image, grid)).to(dtype)
    seeds, k = gt_seeds(mask, grid)
    src, dst, phi = phi_edges(small)
    problem = GcnProblem(adjacency=phi_graph(small), features=conv_features(image, grid).to(dtype),
                         seeds=seeds, num_outputs=k, phi=(src, dst, phi), seed=0)  # fmt: skip
    coverage = float((seeds != 255).double().mean())
    name = f"{image_id} {image.shape[1]}x{image.shape[0]}"
    return NamedProblem(name=name, grid=grid, problem=problem, seed_coverage=coverage)


def synthetic_problem(grid: tuple[int, int] = (94, 125), k: int = 3) -> NamedProblem:
    """``bench/propagation_gcn.py``'s K = 3 problem on graph (b) (module docstring)."""
    h, w = grid
    gen = torch.Generator().manual_seed(0)
    graph = sparse_power_graph(_affinity(h, w, gen), topk=32)
    problem = _problem(graph, h, w, k, FEATURES, gen)
    coverage = float((problem.seeds != 255).double().mean())
    return NamedProblem(name=f"synthetic graph (b) {h}x{w}", grid=grid, problem=problem,
                        seed_coverage=coverage)  # fmt: skip
