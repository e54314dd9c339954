"""WSGCN label maps of whole images: seeds, graph, features, per-image GCN, upsampling, dCRF.

:class:`GcnPropagator` turns an image and its CAM file into a full-size label map (the
``Propagator`` interface of :mod:`wsss.propagation`), one image at a time (``__call__``) or many at
once (:meth:`GcnPropagator.label_batch`, one block-diagonal GCN training):

1. partial labels ``P`` at stride 4: WSGCN's seeds (:class:`~wsss.seeds.WsgcnSeeds`) of the
   CAMs, or given ones (``wsss seeds --method wsgcn`` files);
2. the graph ``A`` (:mod:`wsss.gcn.graphs`): ``phi`` (no network), ``sparse`` or ``dense``
   ``T^(2^k)`` of an IRNet affinity network;
3. node features ``V`` (:mod:`wsss.gcn.features`): ``rgbxy`` or ``colour`` (no network),
   ``backbone``, ``affinity``;
4. the GCN trained on the losses of eqs. (2)-(7) (:func:`~wsss.gcn.train.train_gcn`), with the
   Laplacian loss on ``Phi`` (the paper) or on ``A`` (``laplacian_graph="adjacency"``, the paper's
   side experiment); each image's GCN draws its weights and dropout masks from its own seed,
   :func:`image_seed` of the propagator's seed and the image id;
5. ``Q`` upsampled bilinearly to the image size (``align_corners=True``, as the authors), the
   dense CRF (:data:`wsss.crf.PRESETS` ``wsgcn``: Gaussian 3/3, bilateral 50/5/3, 10
   iterations) when ``crf``, and the argmax over background and the image's classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsss.crf import PRESETS, dense_crf, unary_from_probs
from wsss.data.transforms import normalize_image
from wsss.gcn.features import FEATURE_KINDS, affinity_features, backbone_features, colour_features
from wsss.gcn.graphs import (
    GRAPH_KINDS,
    adjacency_pairs,
    dense_power_graph,
    phi_graph,
    phi_walk_graph,
    sparse_power_graph,
)
from wsss.gcn.phi import phi_edges
from wsss.gcn.train import GcnProblem, GcnSettings, train_gcn
from wsss.graph.sparse import affinity_matrix
from wsss.graph.window import window_edges
from wsss.io.cams import CamFile
from wsss.io.palette import IGNORE_INDEX
from wsss.seeds.resize import downscale_image
from wsss.seeds.wsgcn import WsgcnSeeds

__all__ = ["LAPLACIAN_GRAPHS", "GcnPropagator", "image_seed", "seeds_to_outputs", "upsample_probs"]

#: The pairs of the Laplacian loss (eq. 6): ``phi`` (eq. 7, the paper) or ``adjacency`` (the GCN's
#: graph ``A``: the paper's side experiment, 66.3 instead of 68.0 mIoU).
LAPLACIAN_GRAPHS: tuple[str, ...] = ("phi", "adjacency")


def image_seed(seed: int, image_id: str | None = None, image: np.ndarray | None = None) -> int:
    """The seed of one image's GCN: a 63-bit hash of the run's ``seed`` and the image id (or, when
    no id is given, the image's pixels), so images start from different weights and dropout
    masks, and the same image always from the same ones, in any batch or process."""
    digest = hashlib.blake2b(f"wsss-gcn:{seed}:".encode(), digest_size=8)
    if image_id is not None:
        digest.update(b"id:" + image_id.encode("utf-8"))
    elif image is not None:
        arr = np.ascontiguousarray(image)
        digest.update(b"px:" + str(arr.shape).encode() + arr.tobytes())
    else:
        raise ValueError("image_seed needs an image id or the image")
    return int.from_bytes(digest.digest(), "little") >> 1


def seeds_to_outputs(seeds: np.ndarray, keys: Sequence[int] | np.ndarray) -> Tensor:
    """Partial labels in class ids (0, ``keys``, 255) as output indices (0, 1..C, 255).

    Class ids not among ``keys`` become 255 (unlabelled).

    Shapes:
        seeds: ``(h, w)``. Returns ``(h w,)`` int64.
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.int64)
    lut[0] = 0
    for index, key in enumerate(np.asarray(keys, dtype=np.int64).tolist(), start=1):
        lut[key] = index
    return torch.from_numpy(lut[np.asarray(seeds, dtype=np.uint8)].reshape(-1))


def upsample_probs(probs: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """``(N, K)`` node probabilities on the ``grid`` to ``(K, H, W)`` maps, bilinear with
    ``align_corners=True`` (WSGCN's post-processing)."""
    maps = probs.transpose(0, 1).reshape(1, -1, *grid)
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=True)[0]


class GcnPropagator:
    """WSGCN's per-image GCN propagation (module docstring).

    Args:
        graph: ``phi`` (no network), ``sparse`` or ``dense`` (need ``affinity_model``).
        features: ``rgbxy`` or ``colour`` (no network), ``backbone`` (needs ``backbone``) or
            ``affinity`` (needs an IRNet ``affinity_model``).
        settings: GCN training settings (the paper's by default).
        crf: Refine the upsampled probabilities with the dense CRF.
        seeder: WSGCN seed scheme used when no seeds are given.
        affinity_model: A trained :class:`~wsss.affinity.irn.IRNetAffinity` (eval mode).
        backbone: A trained CAM backbone (eval mode), for ``backbone`` features.
        beta: Affinity exponent of ``T`` (IRNet 10).
        exp_times: ``T^(2^exp_times)`` (8).
        topk: Values kept per row of the sparse graph.
        phi_variant: ``paper`` or ``code`` for ``Phi`` (graph and Laplacian loss).
        laplacian_graph: ``phi`` or ``adjacency`` (:data:`LAPLACIAN_GRAPHS`).
        seed: The run's seed; each image's GCN gets :func:`image_seed` of it and the image id.
        device: Where to compute.
        run: Name of the affinity / CAM run (recorded in the options).
    """

    name = "gcn"
    full_resolution = False

    def __init__(
        self,
        *,
        graph: str = "phi",
        features: str = "rgbxy",
        settings: GcnSettings | None = None,
        crf: bool = True,
        seeder: WsgcnSeeds | None = None,
        affinity_model: nn.Module | None = None,
        backbone: nn.Module | None = None,
        beta: float = 10.0,
        exp_times: int = 8,
        topk: int = 32,
        phi_variant: str = "paper",
        laplacian_graph: str = "phi",
        seed: int = 0,
        device: torch.device | str = "cpu",
        run: str = "",
    ) -> None:
        if graph not in GRAPH_KINDS:
            raise ValueError(f"graph must be one of {GRAPH_KINDS}, got {graph!r}")
        if features not in FEATURE_KINDS:
            raise ValueError(f"features must be one of {FEATURE_KINDS}, got {features!r}")
        if (graph not in ("phi", "phi_walk") or features == "affinity") and affinity_model is None:
            raise ValueError(f"graph {graph!r} / features {features!r} need an affinity network")
        if features == "backbone" and backbone is None:
            raise ValueError("features 'backbone' need a CAM backbone")
        if laplacian_graph not in LAPLACIAN_GRAPHS:
            raise ValueError(f"laplacian_graph must be one of {LAPLACIAN_GRAPHS}, got "
                             f"{laplacian_graph!r}")  # fmt: skip
        self.graph, self.features, self.crf = graph, features, crf
        self.settings = settings or GcnSettings()
        self.seeder = seeder or WsgcnSeeds()
        self.affinity_model, self.backbone = affinity_model, backbone
        self.beta, self.exp_times, self.topk = beta, exp_times, topk
        self.phi_variant, self.seed, self.run = phi_variant, seed, run
        self.laplacian_graph = laplacian_graph
        self.device = torch.device(device)

    def options(self) -> dict[str, Any]:
        """JSON-ready options (saved beside the outputs)."""
        s = self.settings
        return {
            "method": self.name, "graph": self.graph, "features": self.features, "crf": self.crf,
            "run": self.run, "beta": self.beta, "exp_times": self.exp_times, "topk": self.topk,
            "phi_variant": self.phi_variant, "laplacian_graph": self.laplacian_graph,
            "seed": self.seed, "image_seeds": "blake2b(seed, image id)", "hidden": s.hidden,
            "dropout": s.dropout, "lr": s.lr, "weight_decay": s.weight_decay, "steps": s.steps,
            "init": s.init, "outputs": s.outputs, "losses": dataclasses.asdict(s.losses),
            "seeds": dataclasses.asdict(self.seeder),
        }  # fmt: skip

    def _normalized(self, image: np.ndarray) -> Tensor:
        return normalize_image(image).to(self.device)

    def _adjacency(self, image: np.ndarray, small: np.ndarray) -> Tensor:
        if self.graph in ("phi", "phi_walk"):
            tensor = torch.from_numpy(small).to(self.device)
            if self.graph == "phi":
                return phi_graph(tensor, variant=self.phi_variant)
            return phi_walk_graph(tensor, variant=self.phi_variant, exp_times=self.exp_times,
                                  topk=self.topk)  # fmt: skip
        from wsss.affinity.infer import image_affinity

        aff = image_affinity(self.affinity_model, self._normalized(image), radius=5)  # type: ignore[arg-type]
        if aff.size != small.shape[:2]:
            raise ValueError(f"affinity grid {aff.size} and CAM grid {small.shape[:2]} differ "
                             "(the GCN graph needs a stride-4 network: IRNet)")  # fmt: skip
        src, dst = window_edges(*aff.size, aff.radius, device=aff.weights.device)
        matrix = affinity_matrix(src, dst, aff.weights, aff.size[0] * aff.size[1])
        build = sparse_power_graph if self.graph == "sparse" else dense_power_graph
        extra = {"topk": self.topk} if self.graph == "sparse" else {}
        return build(matrix, beta=self.beta, exp_times=self.exp_times, **extra)

    def _features(self, image: np.ndarray, small: np.ndarray, cams: Tensor) -> Tensor:
        if self.features == "colour":
            return colour_features(small, cams).to(self.device)
        if self.features == "rgbxy":
            return colour_features(small, cams)[:, :5].contiguous().to(self.device)
        if self.features == "backbone":
            return backbone_features(self.backbone, self._normalized(image), small.shape[:2])  # type: ignore[arg-type]
        return affinity_features(self.affinity_model, self._normalized(image))  # type: ignore[arg-type]

    def problem(
        self, image: np.ndarray, cam: CamFile, seeds: np.ndarray | None = None, *,
        image_id: str | None = None,
    ) -> GcnProblem:  # fmt: skip
        """The GCN problem of one image (seeds from the CAMs unless given); its GCN's seed is
        :func:`image_seed` of the propagator's seed and ``image_id`` (without one: the pixels).

        Shapes:
            image: ``(H, W, 3)`` uint8; seeds: ``(ceil(H/4), ceil(W/4))`` uint8 class ids.
        """
        grid = tuple(cam.cams.shape[1:])
        small = downscale_image(image, grid)  # type: ignore[arg-type]
        if seeds is None:
            seeds = self.seeder(image, cam, device=self.device)
        if seeds.shape != grid:
            raise ValueError(f"seeds {seeds.shape} do not match the CAM grid {grid}")
        cams = torch.from_numpy(np.asarray(cam.cams, dtype=np.float32))
        adjacency = self._adjacency(image, small)
        pairs = None
        if self.settings.losses.laplacian and self.laplacian_graph == "adjacency":
            pairs = adjacency_pairs(adjacency)
        elif self.settings.losses.laplacian:
            pairs = phi_edges(torch.from_numpy(small).to(self.device), variant=self.phi_variant)  # type: ignore[arg-type]
        features = self._features(image, small, cams)
        return GcnProblem(adjacency=adjacency, features=features,
                          seeds=seeds_to_outputs(seeds, cam.keys).to(self.device),
                          num_outputs=1 + len(cam.keys), phi=pairs,
                          seed=image_seed(self.seed, image_id, image))  # fmt: skip

    def finish(
        self, image: np.ndarray, cam: CamFile, probs: Tensor, *, crf: bool | None = None
    ) -> np.ndarray:
        """Upsample, dCRF (``crf``, default: the propagator's setting), argmax: the ``(H, W)``
        uint8 label map."""
        size = (image.shape[0], image.shape[1])
        maps = upsample_probs(probs, tuple(cam.cams.shape[1:]), size)  # type: ignore[arg-type]
        if self.crf if crf is None else crf:
            img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
            with torch.no_grad():
                maps = dense_crf(img.to(maps.device), unary_from_probs(maps[None]), n_iter=10,
                                 **PRESETS["wsgcn"])[0]  # fmt: skip
        labels = np.concatenate([[0], np.asarray(cam.keys, dtype=np.int64)]).astype(np.uint8)
        return labels[maps.argmax(0).cpu().numpy()]

    def label_batch(
        self,
        images: Sequence[np.ndarray],
        cams: Sequence[CamFile],
        seeds: Sequence[np.ndarray | None] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[np.ndarray]:
        """Label maps of several images, their GCNs trained at once (block-diagonal graph); the
        images' ``ids`` seed their GCNs (without them: their pixels)."""
        given = seeds if seeds is not None else [None] * len(images)
        names = list(ids) if ids is not None else [None] * len(images)
        out: list[np.ndarray | None] = [None] * len(images)
        todo = []
        for i, (image, cam) in enumerate(zip(images, cams, strict=True)):
            if len(cam.keys) == 0:
                out[i] = np.zeros(image.shape[:2], dtype=np.uint8)
            else:
                todo.append(i)
        problems = [self.problem(images[i], cams[i], given[i], image_id=names[i]) for i in todo]
        for i, probs in zip(todo, train_gcn(problems, self.settings), strict=True):
            out[i] = self.finish(images[i], cams[i], probs)
        return out  # type: ignore[return-value]

    def __call__(
        self, image: np.ndarray, cam: CamFile, *, image_id: str | None = None
    ) -> np.ndarray:
        """The ``(H, W)`` uint8 label map of an ``(H, W, 3)`` uint8 image."""
        return self.label_batch([image], [cam], ids=None if image_id is None else [image_id])[0]
