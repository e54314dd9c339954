"""ES-CRF tables 1-2: DeepLabV3+ alone, + Vanilla-CRF, + Joint-CRF, + Non-local and + ES-CRF with
psi_p, psi_s or both, trained with one recipe and seed, scored on val (mIoU, 1-pixel boundary F).

Every row is trained on the ground truth and, when a folder of pseudo labels is given, once more
on them (a "source"). The rows are paired with the baseline: at the same seed every network starts
with the same backbone, ASPP, decoder and classifier (the optional module, ES-CRF or Non-local, is
initialised from a generator of its own, :mod:`wsss.seg.registry`), sees the same batches and
draws the same dropout masks; Joint-CRF starts from the trained baseline. Files under the output
folder:

==================================  ================================================================
``settings.json``                   the resolved recipe, limits and sources (a rerun must match)
``<source>/train/<net>/``           a ``train-seg`` run directory per network (Vanilla-CRF reuses
                                    the baseline's)
``<source>/pred/<row>/``            the val label maps of the row
``<source>/rows/<row>.json``        the row's scores and seconds, written last: a row with this file
                                    is finished and never retrained
``superpixels/<split>/``            SLIC cache of the val images (ES-CRF rows)
``seg.json``, ``seg.md``            the table, rewritten atomically after every row
==================================  ================================================================
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsss.data.base import SegmentationDataset
from wsss.engine import barrier, is_main_process
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text
from wsss.io.settings import check_saved_settings
from wsss.seg.train import SegConfig

__all__ = ["SEG_ROWS", "SegRow", "ablate_seg", "seg_table", "select_seg_rows"]


@dataclass(frozen=True)
class SegRow:
    """One row of ES-CRF tables 1-2.

    Attributes:
        name: Row label.
        key: File name of the row.
        model: Key of :data:`~wsss.seg.registry.SEG_MODELS`.
        pairwise: ES-CRF's psi_p.
        superpixel: ES-CRF's psi_s.
        crf: Dense-CRF post-processing of the predictions (Vanilla-CRF).
        tables: The paper's tables the row belongs to.
        init_from: Key of an earlier row whose trained network starts this one's (Joint-CRF
            fine-tunes the trained DeepLabV3+, as CRF-as-RNN fine-tunes a trained FCN; from
            scratch, the CRF's messages swamp the early logits and it learns only background).
        max_grad_norm: Clip the total gradient norm of this row's training (None: the
            recipe's). Joint-CRF's is 5: the CRF put on a trained network first makes its
            confidently wrong pixels much more so, the first steps' gradient norms are about 70
            (against 2-3 for the trained network alone), and unclipped the fine-tuning collapses
            to background (measured in ``docs/seg.md``).
        lr_scale: This row's learning rate as a multiple of the recipe's. Joint-CRF's is 0.1:
            it fine-tunes a trained network, which CRF-as-RNN does at a far smaller rate than
            training from ImageNet weights; at the recipe's own rate the fine-tuning lowered the
            trained baseline by 12 mIoU (``docs/seg.md``).
    """

    name: str
    key: str
    model: str
    pairwise: bool = True
    superpixel: bool = True
    crf: bool = False
    tables: str = "1, 2"
    init_from: str | None = None
    max_grad_norm: float | None = None
    lr_scale: float = 1.0

    @property
    def net(self) -> str:
        """Name of the trained network (rows differing only in ``crf`` share it)."""
        if self.model != "escrf":
            return self.model
        return "escrf_" + "p" * self.pairwise + "s" * self.superpixel


#: The rows, baseline first (the deltas are against it).
SEG_ROWS: tuple[SegRow, ...] = (
    SegRow("DeepLabV3+", "deeplabv3plus", "deeplabv3plus"),
    SegRow("+ Vanilla-CRF", "vanilla_crf", "deeplabv3plus", crf=True, tables="1"),
    SegRow(
        "+ Joint-CRF",
        "joint_crf",
        "jointcrf",
        tables="1",
        init_from="deeplabv3plus",
        max_grad_norm=5.0,
        lr_scale=0.1,
    ),
    SegRow("+ Non-local", "non_local", "nonlocal", tables="2"),
    SegRow("+ ES-CRF psi_p", "escrf_p", "escrf", superpixel=False, tables="2"),
    SegRow("+ ES-CRF psi_s", "escrf_s", "escrf", pairwise=False, tables="2"),
    SegRow("+ ES-CRF psi_p + psi_s", "escrf_ps", "escrf"),
)


def select_seg_rows(spec: str) -> tuple[SegRow, ...]:
    """The rows named by comma-separated keys (``all``: :data:`SEG_ROWS`), in table order.

    Raises:
        WsssError: an unknown key (the valid ones are named).
    """
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    if keys == ["all"]:
        return SEG_ROWS
    known = {row.key for row in SEG_ROWS}
    unknown = [k for k in keys if k not in known]
    if unknown or not keys:
        raise WsssError(f"unknown seg ablation row(s) {', '.join(unknown) or spec!r}; valid: all, "
                        f"{', '.join(row.key for row in SEG_ROWS)}")  # fmt: skip
    return tuple(row for row in SEG_ROWS if row.key in keys)


def _open(name: str, root: Path, split: str, limit: int | None) -> SegmentationDataset:
    from wsss.data.registry import create_dataset

    data = create_dataset(name, root=root, split=split)
    if limit is not None:
        data.ids = data.ids[:limit]
    return data


def _check_inputs(root: Path, labels: Path | None, train: SegmentationDataset | None,
                  val: SegmentationDataset) -> None:  # fmt: skip
    if val.load_mask(val.ids[0]) is None:
        raise WsssError(f"split {val.split!r} has no ground truth to score on", root)
    if labels is None or train is None:
        return
    missing = [i for i in train.ids if not (labels / f"{i}.png").is_file()]
    if missing:
        raise WsssError(f"{len(missing)} of {len(train)} training images have no pseudo label "
                        f"(first: {missing[0]}.png)", labels,
                        hint="give the label folder of the training split")  # fmt: skip


def _run_row(row: SegRow, config: SegConfig, base: Path, out: Path, *,
             train_data: SegmentationDataset, val: SegmentationDataset, device: str, workers: int,
             progress: bool) -> dict[str, Any]:  # fmt: skip
    """Train (or reuse) the row's network, label val, score it."""
    from wsss.metrics.evaluate import evaluate_predictions
    from wsss.seg.predict import predict_split
    from wsss.seg.train import load_trained, train, train_seconds

    run = base / "train" / row.net
    start = time.perf_counter()
    final = train(config, run, dataset=train_data, device=device, workers=workers,
                  progress=progress)  # fmt: skip
    trained = time.perf_counter()
    model, _ = load_trained(final, device)
    pred = base / "pred" / row.key
    predict_split(model, val, pred, n_segments=config.n_segments,
                  superpixel_cache=out / "superpixels" / val.split,
                  checkpoint=f"{base.name}/train/{row.net}/final.pt", crf=row.crf, device=device,
                  progress=progress)  # fmt: skip
    barrier()
    predicted = time.perf_counter()
    scores = evaluate_predictions(val, pred, boundary=True, tolerance=1, progress=progress)
    return {
        "name": row.name, "model": row.model, "pairwise": row.pairwise,
        "superpixel": row.superpixel, "crf": row.crf, "tables": row.tables, "network": row.net,
        "miou": scores["miou"], "boundary_f": (scores["boundary"] or {}).get("mean_f"),
        "pixel_accuracy": scores["pixel_accuracy"],
        "train_seconds": train_seconds(run), "call_train_seconds": trained - start,
        "predict_seconds": predicted - trained, "eval_seconds": time.perf_counter() - predicted,
        "scores": scores,
    }  # fmt: skip


def ablate_seg(
    root: str | Path, out: str | Path, *, dataset: str = "auto", labels: str | Path | None = None,
    gt: bool = True, split: str = "train", val_split: str = "val", backbone: str = "small",
    epochs: int | None = None, batch_size: int | None = None, lr: float | None = None,
    crop: int | None = None, long_side: tuple[int, int] | None = None, n_segments: int = 200,
    train_limit: int | None = None, val_limit: int | None = None, seed: int = 0,
    pretrained: bool = False, head_channels: int | None = None,
    rows: tuple[SegRow, ...] | None = None, device: str = "cpu", workers: int = 0,
    progress: bool = True, report: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train and score every row of :data:`SEG_ROWS` on each label source; resumable per row.

    Args:
        root: Dataset root (a ``wsss synth`` folder, VOC, ...).
        out: Output folder (see the module notes); rerun with the same settings to resume.
        dataset: Dataset registry name, or ``auto`` (``synthetic`` if ``root`` holds meta.json).
        labels: Folder of ``<id>.png`` pseudo labels of ``split``: adds the ``pseudo`` source.
        gt: Train on the ground truth (the ``gt`` source).
        split: Training split.
        val_split: Split scored (it needs ground truth).
        backbone: Backbone of every network (``small``: the CPU configuration).
        epochs, batch_size, lr, crop, long_side: The recipe; None: the backbone's preset.
        n_segments: SLIC superpixels per image (ES-CRF rows).
        train_limit: Train on the first N images of ``split`` (None: all).
        val_limit: Score the first N images of ``val_split`` (None: all).
        seed: Seed of every training (initialisation, order, augmentation).
        pretrained: Start every network from ImageNet weights (the paper's setting; ResNets,
            EfficientNet-Lite0).
        head_channels: ASPP and decoder width (None: the paper's 256).
        rows: The rows (None: :data:`SEG_ROWS`); the first is the baseline of the deltas.
        device: ``cpu``, ``cuda`` or ``cuda:<i>``.
        workers: DataLoader workers.
        progress: Progress bars.
        report: Called with one line per finished row.

    Returns:
        ``{"settings", "sources": {source: {"labels", "rows": {name: row}}}}``; a row holds
        ``miou``, ``boundary_f`` (percent), seconds and the full :func:`evaluate_predictions` dict.

    Raises:
        WsssError: missing root or label folder, missing pseudo labels, no source, a val split
            without ground truth, or a folder holding an ablation with other settings.
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise WsssError("dataset root does not exist", root, hint="make one with `wsss synth`")
    if labels is not None and not Path(labels).is_dir():
        raise WsssError("pseudo-label folder does not exist", labels)
    sources = {"gt": None} if gt else {}
    if labels is not None:
        sources["pseudo"] = str(Path(labels).resolve())
    if not sources:
        raise WsssError("nothing to train on: give --labels or keep --gt")
    chosen = tuple(SEG_ROWS if rows is None else rows)
    for i, row in enumerate(chosen):
        if row.init_from is not None and row.init_from not in {r.key for r in chosen[:i]}:
            raise WsssError(f"row {row.name!r} starts from row {row.init_from!r}, which does not "
                            f"come before it")  # fmt: skip
    dataset = _dataset_name(dataset, root)
    base = _recipe(dataset, root, split, backbone=backbone, epochs=epochs, lr=lr, crop=crop,
                   batch_size=batch_size, long_side=long_side, n_segments=n_segments,
                   seed=seed, pretrained=pretrained, head_channels=head_channels)  # fmt: skip
    train_data = _open(dataset, root, split, train_limit)
    val = _open(dataset, root, val_split, val_limit)
    _check_inputs(root, None if labels is None else Path(labels), train_data, val)
    settings = {"recipe": base.to_dict(), "train_images": len(train_data), "val_split": val_split,
                "val_images": len(val), "sources": sources}  # fmt: skip
    check_saved_settings(out / "settings.json", settings, what="an ablation")
    result: dict[str, Any] = {"settings": settings, "sources": {}}
    for source, folder in sources.items():
        done: dict[str, Any] = {}
        result["sources"][source] = {"labels": folder, "rows": done}
        for row in chosen:
            path = out / source / "rows" / f"{row.key}.json"
            if not path.is_file():
                init = None
                if row.init_from is not None:
                    start = next(r for r in chosen if r.key == row.init_from)
                    init = str((out / source / "train" / start.net / "final.pt").resolve())
                clip = base.max_grad_norm if row.max_grad_norm is None else row.max_grad_norm
                config = dataclasses.replace(base, labels=folder, model=row.model,
                                             pairwise=row.pairwise, superpixel=row.superpixel,
                                             init=init, max_grad_norm=clip,
                                             lr=base.lr * row.lr_scale)  # fmt: skip
                scores = _run_row(row, config, out / source, out, train_data=train_data, val=val,
                                  device=device, workers=workers, progress=progress)  # fmt: skip
                _finish_row(path, scores, f"{source} {row.name}", report)
            done[row.name] = json.loads(path.read_text(encoding="utf-8"))
            _write_table(out, result)
    return result


def _dataset_name(name: str, root: Path) -> str:
    from wsss.data.synthetic import META_FILE

    if name != "auto":
        return name
    return "synthetic" if (root / META_FILE).is_file() else "voc"


def _recipe(dataset: str, root: Path, split: str, **options: Any) -> SegConfig:
    from wsss.seg.train import resolve_config

    return resolve_config(dataset=dataset, root=root.resolve(), split=split,
                          model="deeplabv3plus", **options)  # fmt: skip


def _finish_row(
    path: Path, scores: dict[str, Any], title: str, report: Callable[[str], None] | None
) -> None:
    if is_main_process():
        atomic_write_text(path, json.dumps(scores, indent=2) + "\n")
    barrier()
    if report is not None:
        f = scores["boundary_f"]
        report(f"{title}: mIoU {scores['miou']:.2f}, boundary F "
               f"{'-' if f is None else f'{f:.2f}'}")  # fmt: skip


def _write_table(out: Path, result: dict[str, Any]) -> None:
    if is_main_process():
        atomic_write_text(out / "seg.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out / "seg.md", "\n".join(seg_table(result)) + "\n")


def _cell(value: float | None, base: float | None = None) -> str:
    if value is None:
        return "-"
    if base is None:
        return f"{value:.2f}"
    return f"{value:.2f} ({value - base:+.2f})"


def seg_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines: one table per source, rows as ES-CRF tables 1-2 with deltas to the first."""
    s = result["settings"]
    r = s["recipe"]
    lines = [
        f"ES-CRF tables 1-2 layout: backbone {r['backbone']}, {r['epochs']} epochs, batch "
        f"{r['batch_size']}, {r.get('optimizer', 'sgd')} lr {r['lr']} (head x"
        f"{r['head_lr_mult']:g}), crop {r['crop']}, seed {r['seed']}; "
        f"{s['train_images']} images of {r['split']}, scored on {s['val_images']} images of "
        f"{s['val_split']} (single scale; F: 1-pixel boundary F-score, %)",
    ]
    for source, block in result["sources"].items():
        where = "ground truth" if source == "gt" else f"pseudo labels {block['labels']}"
        lines += ["", f"Trained on {where}:", "",
                  "| method | table | psi_p | psi_s | F-score | mIoU | train s | pred+eval s |",
                  "|---|---|:-:|:-:|---:|---:|---:|---:|"]  # fmt: skip
        rows = list(block["rows"].values())
        first = rows[0] if rows else {}
        for row in SEG_ROWS if rows is None else rows:
            es = row["model"] == "escrf"
            ticks = ("x" if es and row["pairwise"] else "", "x" if es and row["superpixel"] else "")
            shared = row["crf"]
            train = "(shared)" if shared else f"{row['train_seconds']:.0f}"
            rest = row["predict_seconds"] + row["eval_seconds"]
            same = row is first
            lines.append(
                f"| {row['name']} | {row['tables']} | {ticks[0]} | {ticks[1]} | "
                f"{_cell(row['boundary_f'], None if same else first.get('boundary_f'))} | "
                f"{_cell(row['miou'], None if same else first.get('miou'))} | {train} | "
                f"{rest:.0f} |"
            )
    return lines
