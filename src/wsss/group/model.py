"""The group-wise classifier of Group-WSSS and its loss (eq. 12).

A CAM backbone (VGG16 dilated, ResNet or the small net) turns each image of a group into its
node features ``h^0``; an intermediate readout on ``h^0`` gives ``l^m``, the GNN refines ``h^0``
into ``h^T`` and the graph readout gives ``l^g`` (paper, Fig. 2 and "Classification Network").
CAMs come from both readouts and from their average (self-ensembling, Table 3).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from wsss.group.adjacency import label_adjacency
from wsss.group.dropout import DropEval, DropForm, DropMode
from wsss.group.gnn import GroupGNN
from wsss.group.messages import MessageNorm
from wsss.group.readout import Readout
from wsss.group.seeding import part_stream
from wsss.models.backbones import Backbone

__all__ = ["GroupCams", "GroupClassifier", "GroupLogits", "ensemble_cams", "group_loss"]


class GroupLogits(NamedTuple):
    """The two outputs of every image: ``intermediate`` (``l^m``) and ``graph`` (``l^g``),
    each ``(B, K, L)``."""

    intermediate: Tensor
    graph: Tensor


class GroupCams(NamedTuple):
    """ReLU class maps ``(B, K, L, h, w)`` from the intermediate readout, the graph readout and
    their average (self-ensembling)."""

    intermediate: Tensor
    graph: Tensor
    ensemble: Tensor


class GroupClassifier(nn.Module):
    """Backbone -> node features -> T rounds of message passing -> readouts.

    Args:
        backbone: The feature extractor; its output is ``h^0`` (``C = backbone.out_channels``).
        num_labels: Image-level labels ``L`` (background excluded).
        reduction: ``d`` of eq. (5) (4).
        steps: Message-passing rounds ``T`` (3).
        gru_kernel: ConvGRU kernel size (1).
        graph_dropout: Use the graph dropout layer.
        delta_r: Drop-rate threshold (0.8).
        delta_d: Drop threshold (0.7).
        drop_mode: Reading of eq. (10) (``binary``).
        drop_form: ``paper`` (``h s``, eq. 11) or ``authors`` (``(h s + h) / 2``).
        drop_eval: Graph dropout in evaluation mode: ``expected`` or ``identity``
            (:mod:`wsss.group.dropout`).
        messages: ``sum`` (eq. 8), ``mean`` or ``joint`` (:mod:`wsss.group.messages`).
        freeze_bn: Keep the backbone's BatchNorms in eval mode with fixed affine parameters
            (for pretrained ResNets: a group of 4 images is a small batch).
        seed: Initialise every GNN layer and readout from its own stream
            (:mod:`wsss.group.seeding`), so that optional pieces never shift the initial weights
            of the shared ones; None: the global stream.

    Shapes:
        images: ``(B, K, 3, H, W)`` (``B`` groups of ``K`` images); labels: ``(B, K, L)``
        multi-hot; :meth:`forward`: :class:`GroupLogits` of ``(B, K, L)``; :meth:`cams`:
        :class:`GroupCams` of ``(B, K, L, h, w)``, ``h, w`` the feature-map size.
    """

    def __init__(
        self, *, backbone: Backbone, num_labels: int, reduction: int = 4, steps: int = 3,
        gru_kernel: int = 1, graph_dropout: bool = True, delta_r: float = 0.8,
        delta_d: float = 0.7, drop_mode: DropMode = "binary", drop_form: DropForm = "paper",
        drop_eval: DropEval = "expected", messages: MessageNorm = "sum", freeze_bn: bool = False,
        seed: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        channels = backbone.out_channels
        self.backbone = backbone
        self.gnn = GroupGNN(channels=channels, reduction=reduction, steps=steps,
                            gru_kernel=gru_kernel, graph_dropout=graph_dropout, delta_r=delta_r,
                            delta_d=delta_d, drop_mode=drop_mode, drop_form=drop_form,
                            drop_eval=drop_eval, messages=messages, seed=seed)  # fmt: skip
        with part_stream(seed, "intermediate_readout"):
            self.intermediate_readout = Readout(channels=channels, num_labels=num_labels)
        with part_stream(seed, "graph_readout"):
            self.graph_readout = Readout(channels=channels, num_labels=num_labels)
        self.num_labels = num_labels
        self.freeze_bn = freeze_bn
        for bn in self._frozen_bns():
            bn.requires_grad_(False)
        self.train()

    def _frozen_bns(self) -> list[nn.modules.batchnorm._BatchNorm]:
        if not self.freeze_bn:
            return []
        return [
            m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]

    def train(self, mode: bool = True) -> GroupClassifier:
        """Set the training mode, keeping frozen BatchNorms in eval mode."""
        super().train(mode)
        for bn in self._frozen_bns():
            bn.eval()
        return self

    def node_features(self, images: Tensor) -> Tensor:
        """``h^0``: the backbone's feature map of every image, ``(B, K, C, h, w)``."""
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(
                f"expected groups of images (B, K, 3, H, W), got {tuple(images.shape)}"
            )
        b, k = images.shape[:2]
        return self.backbone(images.flatten(0, 1)).unflatten(0, (b, k))

    def _adjacency(self, images: Tensor, labels: Tensor) -> Tensor:
        _check_images(images)
        if tuple(labels.shape) != (*images.shape[:2], self.num_labels):
            raise ValueError(
                f"expected labels {(*images.shape[:2], self.num_labels)} for images "
                f"{tuple(images.shape)}, got {tuple(labels.shape)}"
            )
        return label_adjacency(labels)

    def forward(self, images: Tensor, labels: Tensor) -> GroupLogits:
        """Intermediate and graph logits; ``labels`` define the graph's edges."""
        adjacency = self._adjacency(images, labels)
        h0 = self.node_features(images)
        h_final = self.gnn(h0, adjacency)
        return GroupLogits(self.intermediate_readout(h0), self.graph_readout(h_final))

    def cams(self, images: Tensor, labels: Tensor, *, normalize: bool = False) -> GroupCams:
        """CAMs of both readouts and their average (see :func:`ensemble_cams`)."""
        adjacency = self._adjacency(images, labels)
        h0 = self.node_features(images)
        h_final = self.gnn(h0, adjacency)
        inter, graph = self.intermediate_readout.cams(h0), self.graph_readout.cams(h_final)
        return GroupCams(inter, graph, ensemble_cams(inter, graph, normalize=normalize))

    def param_groups(self, lr: float, gnn_lr_mult: float = 10.0) -> list[dict[str, Any]]:
        """Trainable parameters: the backbone's at ``lr``, the GNN's and both readouts' at
        ``lr * gnn_lr_mult`` (paper: 1e-3 and 1e-2)."""
        head = [*self.gnn.parameters(), *self.intermediate_readout.parameters(),
                *self.graph_readout.parameters()]  # fmt: skip
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        groups = [{"params": [p for p in head if p.requires_grad], "lr": lr * gnn_lr_mult}]
        if backbone:
            groups.insert(0, {"params": backbone, "lr": lr})
        return groups


def _check_images(images: Tensor) -> None:
    if images.ndim != 5 or images.shape[2] != 3:
        raise ValueError(f"expected groups of images (B, K, 3, H, W), got {tuple(images.shape)}")


def ensemble_cams(intermediate: Tensor, graph: Tensor, *, normalize: bool = False) -> Tensor:
    """Self-ensembling of the two readouts' CAMs by averaging (paper, Table 3).

    Args:
        intermediate: CAMs of the intermediate readout.
        graph: CAMs of the graph readout.
        normalize: Divide each map by its maximum (per image and class) before averaging, so
            that neither readout dominates; the paper (and the authors' code) average the raw
            maps, the default.

    Shapes:
        intermediate, graph: ``(..., h, w)``, equal; output: the same.
    """
    if intermediate.shape != graph.shape:
        raise ValueError(
            f"CAMs differ in shape: {tuple(intermediate.shape)} vs {tuple(graph.shape)}"
        )
    if normalize:
        intermediate, graph = (_max_normalize(c) for c in (intermediate, graph))
    return (intermediate + graph) / 2


def _max_normalize(cams: Tensor) -> Tensor:
    peak = cams.flatten(-2).amax(dim=-1)[..., None, None]
    return cams / peak.clamp_min(1e-5)


def group_loss(logits: GroupLogits, labels: Tensor, *, lam: float = 0.4) -> Tensor:
    """Eq. (12): ``L_CE(l^g, l) + lambda L_CE(l^m, l)`` per image.

    ``L_CE`` is the sigmoid cross-entropy averaged over the labels (the multilabel soft-margin
    loss, as the CAM classifier's).

    Args:
        logits: The model's outputs.
        labels: Multi-hot labels.
        lam: ``lambda`` (0.4).

    Returns:
        The loss of every image, ``(B, K)``; its mean is the mini-batch loss.

    Shapes:
        logits: two ``(B, K, L)``; labels: ``(B, K, L)``.
    """
    if logits.graph.shape != labels.shape or logits.intermediate.shape != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.graph.shape)} / {tuple(logits.intermediate.shape)} and labels "
            f"{tuple(labels.shape)} differ"
        )
    target = labels.to(logits.graph.dtype)

    def soft_margin(x: Tensor) -> Tensor:
        return F.multilabel_soft_margin_loss(
            x.flatten(0, 1), target.flatten(0, 1), reduction="none"
        )

    b, k = labels.shape[:2]
    return (soft_margin(logits.graph) + lam * soft_margin(logits.intermediate)).reshape(b, k)
