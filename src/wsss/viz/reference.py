"""The papers' PASCAL VOC 2012 numbers that the report shows beside a run's own.

Every number is a mIoU (%) as read from the papers and the authors' public code, collected in the
project's reference specification (``SPEC.md``, sections 0, 4 and 5). Pseudo-label rows are
scored on VOC ``train`` (1,464 images), segmentation rows on ``val`` (1,449). The papers report no
mIoU for partial seeds, so seed rows have no reference.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """One published number.

    Attributes:
        miou: mIoU in percent.
        split: VOC split it was measured on.
        source: Paper, table and setting it comes from.
    """

    miou: float
    split: str
    source: str


_IRNET = "IRNet (Ahn, Cho & Kwak, CVPR 2019)"
_WSGCN_T2 = "WSGCN table 2 (WSGCN-I: IRNet features and graph)"
_GROUP = "Group-WSSS ablation: val mIoU of DeepLab trained on these CAMs' labels, no CAM mIoU given"

#: Row name in the report -> the paper's number (SPEC.md sections 0, 4, 5).
PAPER_VOC: dict[str, Reference] = {
    "CAM": Reference(48.3, "train", f"{_IRNET}, CAM of ResNet-50"),
    "AffinityNet RW": Reference(
        58.1, "train", "AffinityNet (Ahn & Kwak, CVPR 2018) paper; 61.0 in the authors' README"
    ),
    "IRNet RW": Reference(66.5, "train", f"{_IRNET}; users reproduce 64.9-66.0"),
    "WSGCN-I": Reference(66.7, "train", f"{_WSGCN_T2}, without dCRF"),
    "WSGCN-I + dCRF": Reference(68.0, "train", f"{_WSGCN_T2}, with dCRF"),
    "WSGCN-P": Reference(64.0, "train", "WSGCN, AffinityNet features"),
    "GCN: l_fg + l_bg": Reference(62.0, "train", _WSGCN_T2),
    "GCN: + l_ent": Reference(63.5, "train", _WSGCN_T2),
    "GCN: + l_lp": Reference(64.4, "train", _WSGCN_T2),
    "GCN: + l_ent + l_lp (WSGCN-I)": Reference(66.7, "train", _WSGCN_T2),
    "GCN: + l_ent + l_lp + dCRF": Reference(68.0, "train", _WSGCN_T2),
    "Group-WSSS CAM (intermediate)": Reference(64.1, "val", _GROUP),
    "Group-WSSS CAM (graph)": Reference(67.8, "val", _GROUP),
    "Group-WSSS CAM (ensemble)": Reference(68.2, "val", _GROUP),
    "segmentation": Reference(
        66.7,
        "val",
        "WSGCN-I labels, DeepLab-v2 (68.8 on test); Group-WSSS 68.2 val / 68.5 test "
        "(ResNet-101, with saliency)",
    ),
}


def paper_reference(name: str, stage: str | None = None) -> Reference | None:
    """The reference of row ``name``, else of its ``stage``; None when the papers give none."""
    found = PAPER_VOC.get(name)
    if found is None and stage is not None:
        found = PAPER_VOC.get(stage)
    return found
