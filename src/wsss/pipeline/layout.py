"""Where each stage of a run keeps its outputs: the run folder's layout, in one place.

The pipeline's stages, the ablations, the report and the benchmarks all find a run's files
through these functions (and :class:`Context`), so none of them imports another's stage code.
Every function takes the :class:`Context` (or anything with ``config`` and ``path``) and only
builds paths: nothing here reads or writes files, except that the ``*_folders`` functions list
the folders that exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsss.data.base import SegmentationDataset
from wsss.data.registry import create_dataset
from wsss.errors import WsssError
from wsss.io.rundir import RunDir

__all__ = ["CRF_LABEL", "DEFAULT_SEG_VARIANTS", "PREDICTION_FOLDERS", "Context",
           "affinity_methods", "affinity_run", "cam_calibration", "cam_dir", "crf_dir",
           "eval_split", "gcn_dir", "gcn_variants", "group_train_dir", "pseudo_cam_dir",
           "pseudo_label_folders", "pseudo_split", "rw_dir", "seed_dir", "seg_dir",
           "seg_prediction_folders", "seg_settings", "seg_variants", "train_split"]  # fmt: skip


@dataclass
class Context:
    """What every stage sees: the resolved configuration and the run directory."""

    config: dict[str, Any]
    rundir: RunDir
    progress: bool = True

    @property
    def path(self) -> Path:
        return self.rundir.path

    @property
    def data_root(self) -> Path:
        root = self.config["data"].get("root")
        return Path(root) if root else self.path / "data"

    def dataset(self, split: str) -> SegmentationDataset:
        return create_dataset(self.config["data"]["dataset"], root=self.data_root, split=split)

    def predictions(self) -> dict[str, Path]:
        """Prediction folders (``<run>/<method>/val``) of the methods run so far, by name: the
        segmentation networks (``seg_<name>/val``), then the reference baselines."""
        return {
            **seg_prediction_folders(self),
            **{
                name: self.path / folder / "val"
                for name, folder in PREDICTION_FOLDERS.items()
                if (self.path / folder / "val").is_dir()
            },
        }


#: Reference baselines' folders (``<run>/<folder>/val``) by display name.
PREDICTION_FOLDERS = {"colour-only (supervised, oracle labels)": "colour_baseline"}


# -- splits ----------------------------------------------------------------------------------------
def pseudo_split(ctx: Any) -> str:
    """The split whose pseudo labels are made and scored (``config['pseudo']['split']``)."""
    return str(ctx.config.get("pseudo", {}).get("split", "train"))


def eval_split(ctx: Any) -> str:
    """The split the pseudo labels are scored on (``config['pseudo']['eval_split']``, default the
    pseudo-label split): VOC ``train``, whose ids lie inside the ``train_aug`` pseudo labels."""
    return str(ctx.config.get("pseudo", {}).get("eval_split") or pseudo_split(ctx))


def train_split(ctx: Any) -> str:
    """The split the CAM classifiers train on (``config['data']['train_split']``, default
    ``train``; VOC: ``train_aug``)."""
    return str(ctx.config["data"].get("train_split") or "train")


# -- CAMs, seeds, propagation ------------------------------------------------------------------------
def cam_dir(ctx: Any) -> Path:
    """Folder of the CAM files of the pseudo-label split."""
    return ctx.path / "cams" / pseudo_split(ctx)


def cam_calibration(ctx: Any) -> str | float | None:
    """``pseudo.cam_calibration``: None (the CAMs as they are), ``"ground truth"`` (the CAM's
    best background threshold on the evaluation split's masks) or a threshold (a number in
    (0, 1)) that :mod:`wsss.cam.calibrate` maps to the papers' 0.15."""
    value = ctx.config.get("pseudo", {}).get("cam_calibration")
    return None if value in (None, "none") else value


def pseudo_cam_dir(ctx: Any) -> Path:
    """Folder of the CAM files the seeds, random walks, GCNs and CRFs read: the calibrated CAMs
    (``cams_calibrated/<split>``) when ``pseudo.cam_calibration`` is set, else :func:`cam_dir`."""
    if cam_calibration(ctx) is None:
        return cam_dir(ctx)
    return ctx.path / "cams_calibrated" / pseudo_split(ctx)


def seed_dir(ctx: Any, method: str, *, full_size: bool) -> Path:
    """Folder of one seed method's label PNGs (full image size, or the scheme's own size)."""
    return ctx.path / "seeds" / (f"{method}_full" if full_size else method)


def group_train_dir(ctx: Any) -> Path:
    """The group classifier's run directory."""
    return Path(ctx.path) / "group_train"


def affinity_methods(ctx: Any) -> list[str]:
    """The configured affinity networks (``affinity.methods``)."""
    return list(ctx.config.get("affinity", {}).get("methods", []))


def affinity_run(ctx: Any, method: str) -> Path:
    """Run directory of one affinity network."""
    return ctx.path / "affinity" / method


def rw_dir(ctx: Any, method: str) -> Path:
    """Folder of one random walk's label PNGs (image size)."""
    return ctx.path / "rw" / method


#: Display name of the dense CRF of the CAMs (the ``crf`` stage).
CRF_LABEL = "CAM + dCRF"


def crf_dir(ctx: Any) -> Path:
    """Folder of the label PNGs of the dense CRF of the CAMs (image size)."""
    return ctx.path / "crf"


def gcn_variants(ctx: Any) -> list[dict[str, Any]]:
    """The configured WSGCN variants (``gcn.variants``)."""
    return list(ctx.config.get("gcn", {}).get("variants", []))


def gcn_dir(ctx: Any, variant: dict[str, Any], *, crf: bool) -> Path:
    """Folder of one GCN variant's label PNGs (image size), without or with the dense CRF."""
    return ctx.path / "gcn" / (f"{variant['name']}_crf" if crf else str(variant["name"]))


def pseudo_label_folders(ctx: Any) -> dict[str, Path]:
    """Complete pseudo-label folders made so far, by display name (for scoring and the report)."""
    names = {"irn": "IRNet RW", "psa": "AffinityNet RW"}
    methods = affinity_methods(ctx)
    folders = {CRF_LABEL: crf_dir(ctx)} if crf_dir(ctx).is_dir() else {}
    folders |= {names.get(m, f"{m} RW"): rw_dir(ctx, m) for m in methods if rw_dir(ctx, m).is_dir()}
    for variant in gcn_variants(ctx):
        label = str(variant.get("label", variant["name"]))
        for crf, suffix in ((False, ""), (True, " + dCRF")):
            if gcn_dir(ctx, variant, crf=crf).is_dir():
                folders[label + suffix] = gcn_dir(ctx, variant, crf=crf)
    return folders


# -- segmentation ----------------------------------------------------------------------------------
#: Networks trained when ``seg.variants`` is not given: the baseline and ES-CRF (psi_p + psi_s).
DEFAULT_SEG_VARIANTS: tuple[dict[str, Any], ...] = (
    {"name": "deeplabv3p", "label": "DeepLabV3+", "head": "deeplabv3plus"},
    {"name": "escrf", "label": "ES-CRF", "head": "escrf"},
)


def seg_settings(ctx: Any) -> dict[str, Any]:
    """The ``seg`` section of the configuration (empty when absent)."""
    return dict(ctx.config.get("seg") or {})


def seg_variants(ctx: Any) -> list[dict[str, Any]]:
    """The configured networks (``seg.variants``), each with a ``name`` and a ``head``.

    Raises:
        WsssError: a variant without a name or with a repeated one.
    """
    variants = [dict(v) for v in seg_settings(ctx).get("variants") or DEFAULT_SEG_VARIANTS]
    names = [v.get("name") for v in variants]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise WsssError(f"seg.variants need distinct names, got {names}")
    return variants


def seg_dir(ctx: Any, variant: dict[str, Any]) -> Path:
    """Folder of one network: ``train/`` (its run directory) and ``val/`` (its label maps)."""
    return ctx.path / f"seg_{variant['name']}"


def seg_prediction_folders(ctx: Any) -> dict[str, Path]:
    """Val label-map folders written so far, by display name (``label`` or ``name`` of each)."""
    folders = {}
    for variant in seg_variants(ctx):
        folder = seg_dir(ctx, variant) / "val"
        if folder.is_dir():
            folders[str(variant.get("label", variant["name"]))] = folder
    return folders
