"""Group-WSSS table 3 on a dataset: the single-image CAM next to the group model's outputs and
variants (K, T, graph dropout), each scored by the CAM mIoU at its best background threshold.

Every network is trained with one recipe and seed; the group networks start from the single
row's trained classifier (``init``, the CPU stand-in for the paper's ImageNet weights; turn it
off to train them from their own initialisation). Rows sharing a network (the full model's
intermediate, graph and self-ensembling outputs) share its training and one inference pass.
Files under the output folder:

==========================  ======================================================================
``settings.json``           the recipes, image counts and scales (a rerun must match)
``train/<net>/``            a ``train-cam`` run directory per network (``single``, ``k4_t3``, ...)
``cams/<row>/``             the row's CAM files of the scored split
``rows/<row>.json``         the row's scores and seconds, written last: a row with this file is
                            finished and never recomputed
``group.json``, ``group.md``  the table, rewritten atomically after every row
==========================  ======================================================================
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsss.data.base import SegmentationDataset
from wsss.engine import barrier, is_main_process
from wsss.engine.training import train_seconds
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text
from wsss.io.settings import check_saved_settings

__all__ = ["GROUP_ROWS", "GroupRow", "ablate_group", "group_table"]


@dataclass(frozen=True)
class GroupRow:
    """One row of Group-WSSS table 3.

    Attributes:
        name: Row label (the paper's variant).
        key: File name of the row.
        aspect: The paper's "Aspect" column.
        model: ``single`` (the single-image CAM classifier) or ``group``.
        output: CAM output of the group model (``intermediate``, ``graph``, ``ensemble``).
        group_size: ``K``.
        rounds: ``T``.
        graph_dropout: The graph dropout layer.
        infer_group_size: Images per group at inference when it differs from ``group_size``
            (1: every image alone, only its self-edge; not in the paper, a check of what the
            other images' messages add).
    """

    name: str
    key: str
    aspect: str
    model: str = "group"
    output: str = "ensemble"
    group_size: int = 4
    rounds: int = 3
    graph_dropout: bool = True
    infer_group_size: int | None = None

    @property
    def net(self) -> str:
        """Name of the trained network (rows differing only in ``output`` share it)."""
        if self.model == "single":
            return "single"
        return f"k{self.group_size}_t{self.rounds}" + ("" if self.graph_dropout else "_nodrop")


#: The rows: the single-image baseline, the full model, then the variants of table 3, and (not in
#: the paper) the full model's graph output with each image alone in its inference group.
GROUP_ROWS: tuple[GroupRow, ...] = (
    GroupRow("single-image CAM", "single", "Baseline", model="single", output="-"),
    GroupRow("T = 3, K = 4 (self-ensembling)", "full", "Full model"),
    GroupRow("K = 3", "k3", "Node number", group_size=3),
    GroupRow("K = 5", "k5", "Node number", group_size=5),
    GroupRow("T = 2", "t2", "Message passing", rounds=2),
    GroupRow("w/o dropout", "no_dropout", "Graph dropout", graph_dropout=False),
    GroupRow("intermediate output", "intermediate", "Self-ensembling", output="intermediate"),
    GroupRow("graph output", "graph", "Self-ensembling", output="graph"),
    GroupRow(
        "graph output, alone", "graph_alone", "Group context", output="graph", infer_group_size=1
    ),
)


def _open(name: str, root: Path, split: str, limit: int | None) -> SegmentationDataset:
    from wsss.data.registry import create_dataset

    data = create_dataset(name, root=root, split=split)
    if limit is not None:
        data.ids = data.ids[:limit]
    return data


@dataclass(frozen=True)
class _Plan:
    """What every row needs: the datasets, both recipes and the run options."""

    out: Path
    train: SegmentationDataset
    scored: SegmentationDataset
    single: Any  # wsss.cam.train.TrainConfig
    group: Any  # wsss.group.train.GroupTrainConfig
    scales: tuple[float, ...]
    device: str
    workers: int
    progress: bool


def _train(row: GroupRow, plan: _Plan) -> Path:
    from wsss.cam.train import train
    from wsss.group.train import train_group

    run = plan.out / "train" / row.net
    if row.model == "single":
        return train(plan.single, run, dataset=plan.train, device=plan.device,
                     workers=plan.workers, progress=plan.progress)  # fmt: skip
    config = dataclasses.replace(plan.group, group_size=row.group_size, steps=row.rounds,
                                 graph_dropout=row.graph_dropout)  # fmt: skip
    return train_group(config, run, dataset=plan.train, device=plan.device, workers=plan.workers,
                       progress=plan.progress)  # fmt: skip


def _cams(row: GroupRow, final: Path, plan: _Plan, rows: Sequence[GroupRow]) -> Path:
    """Write the row's CAM files (and those of the rows sharing its network)."""
    from wsss.engine.training import resolve_device

    folder = plan.out / "cams" / row.key
    dev = resolve_device(plan.device)
    if row.model == "single":
        from wsss.cam.infer import infer_cams, load_trained

        model, _ = load_trained(final, dev)
        infer_cams(model, plan.scored, folder, scales=plan.scales, high_res=True,
                   device=plan.device, progress=plan.progress)  # fmt: skip
    else:
        from wsss.group.infer import infer_group_cams, load_group_trained

        group, config = load_group_trained(final, dev)
        size = row.infer_group_size or config.group_size
        folders = {r.output: plan.out / "cams" / r.key for r in rows if r.net == row.net
                   and (r.infer_group_size or config.group_size) == size}  # fmt: skip
        infer_group_cams(group, plan.scored, folders, group_size=size,
                         seed=config.seed, scales=plan.scales, high_res=True, device=plan.device,
                         progress=plan.progress)  # fmt: skip
    barrier()
    return folder


def _run_row(row: GroupRow, plan: _Plan, rows: Sequence[GroupRow]) -> dict[str, Any]:
    from wsss.metrics.evaluate import evaluate_cams

    start = time.perf_counter()
    final = _train(row, plan)
    trained = time.perf_counter()
    folder = _cams(row, final, plan, rows)
    inferred = time.perf_counter()
    scores = evaluate_cams(plan.scored, folder, progress=plan.progress)
    return {
        **dataclasses.asdict(row), "network": row.net, "miou": scores["best"]["miou"],
        "best_threshold": scores["best_threshold"], "miou_at": scores["miou_at"],
        "curve": scores["curve"], "train_seconds": train_seconds(final.parent),
        "call_train_seconds": trained - start, "cam_seconds": inferred - trained,
        "eval_seconds": time.perf_counter() - inferred,
    }  # fmt: skip


def ablate_group(
    root: str | Path, out: str | Path, *, dataset: str = "auto", split: str = "train",
    eval_split: str | None = None, backbone: str = "small", cam_epochs: int | None = None,
    group_epochs: int | None = None, batch_size: int | None = None, crop: int | None = None,
    train_limit: int | None = None,
    eval_limit: int | None = None, scales: Sequence[float] = (1.0, 0.5), init: bool = True,
    seed: int = 0, rows: Sequence[GroupRow] | None = None, device: str = "cpu", workers: int = 0,
    progress: bool = True, report: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train and score every row of :data:`GROUP_ROWS`; resumable per row.

    Args:
        root: Dataset root (a ``wsss synth`` folder, VOC, ...).
        out: Output folder (see the module notes); rerun with the same settings to resume.
        dataset: Dataset registry name, or ``auto`` (``synthetic`` if ``root`` holds meta.json).
        split: Training split.
        eval_split: Split whose CAMs are scored (None: ``split``, the pseudo-label protocol).
        backbone: Backbone of every network (``small``: the CPU configuration).
        cam_epochs: Epochs of the single-image classifier (None: its preset, small 30).
        group_epochs: Epochs of each group network (None: its preset; small 30, or 1 with
            ``init``).
        batch_size: Batch size of the single-image classifier (None: its preset, 16); a group
            network's batch is one group.
        crop: Training crop side of both (None: the presets', small 128).
        train_limit: Train on the first N images of ``split`` (None: all).
        eval_limit: Score the first N images of ``eval_split`` (None: all); groups are formed
            among them.
        scales: Inference scales of every row.
        init: Start the group networks from the single row's classifier.
        seed: Seed of every training and of the inference grouping.
        rows: The rows to run (default :data:`GROUP_ROWS`).
        device: ``cpu``, ``cuda`` or ``cuda:<i>``.
        workers: DataLoader worker processes.
        progress: Show progress bars (rank 0).
        report: Called with a line after each finished row (rank 0 and others).

    Returns:
        ``{"settings", "rows": {name: row scores}}`` (what ``group.json`` holds).

    Raises:
        WsssError: a folder with other settings, or an invalid recipe.
    """
    from wsss.cam.train import resolve_config
    from wsss.data.synthetic import META_FILE
    from wsss.group.train import default_epochs, resolve_group_config

    root, out = Path(root), Path(out)
    if dataset == "auto":
        dataset = "synthetic" if (root / META_FILE).is_file() else "voc"
    scored_split = eval_split or split
    train_data = _open(dataset, root, split, train_limit)
    scored = _open(dataset, root, scored_split, eval_limit)
    common = {"dataset": dataset, "root": root.resolve(), "split": split, "backbone": backbone,
              "crop": crop, "seed": seed}  # fmt: skip
    single = resolve_config(model="cam", epochs=cam_epochs, batch_size=batch_size, **common)
    init_path = out.resolve() / "train" / "single" / "final.pt"
    epochs = default_epochs(backbone, init=init) if group_epochs is None else group_epochs
    group = resolve_group_config(epochs=epochs, **common)  # init set below: not trained yet
    group = dataclasses.replace(group, init=str(init_path) if init else None)
    settings = {"single": single.to_dict(), "group": group.to_dict(),
                "train_images": len(train_data), "eval_split": scored_split,
                "eval_images": len(scored), "scales": [float(s) for s in scales]}  # fmt: skip
    check_saved_settings(out / "settings.json", settings, what="an ablation")
    barrier()
    plan = _Plan(out, train_data, scored, single, group, tuple(float(s) for s in scales), device,
                 workers, progress)  # fmt: skip
    chosen = tuple(GROUP_ROWS if rows is None else rows)
    if init and any(r.model == "group" for r in chosen) and chosen[0].model != "single":
        raise WsssError("with init, the single-image row must come first")
    result: dict[str, Any] = {"settings": settings, "rows": {}}
    for row in chosen:
        path = out / "rows" / f"{row.key}.json"
        if not path.is_file():
            scores = _run_row(row, plan, chosen)
            if is_main_process():
                atomic_write_text(path, json.dumps(scores, indent=2) + "\n")
            barrier()
            if report is not None:
                report(f"{row.aspect} / {row.name}: CAM mIoU {scores['miou']:.2f} at background "
                       f"threshold {scores['best_threshold']:.2f}")  # fmt: skip
        result["rows"][row.name] = json.loads(path.read_text(encoding="utf-8"))
        if is_main_process():
            atomic_write_text(out / "group.json", json.dumps(result, indent=2) + "\n")
            atomic_write_text(out / "group.md", "\n".join(group_table(result)) + "\n")
    return result


def group_table(result: dict[str, Any]) -> list[str]:
    """Markdown lines in the layout of Group-WSSS table 3 (aspect, variant, mIoU), with the
    best background threshold and the seconds of each row."""
    s = result["settings"]
    g = s["group"]
    lines = [
        f"Group-WSSS table 3 layout: backbone {g['backbone']}, single {s['single']['epochs']} "
        f"epochs, group {g['epochs']} epochs{' (from the single network)' if g.get('init') else ''}, "
        f"crop {g['crop']}, seed {g['seed']}; trained on {s['train_images']} images of "
        f"{g['split']}, CAMs of {s['eval_images']} images of {s['eval_split']} at scales "
        f"{', '.join(str(x) for x in s['scales'])} (CAM mIoU at the best background threshold, %)",
        "",
        "| aspect | variant | output | mIoU | threshold | train s | CAM s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    trained: set[str] = set()
    for row in result["rows"].values():
        shared = row["network"] in trained
        trained.add(row["network"])
        train = "(shared)" if shared else f"{row['train_seconds']:.0f}"
        lines.append(
            f"| {row['aspect']} | {row['name']} | {row['output']} | {row['miou']:.2f} | "
            f"{row['best_threshold']:.2f} | {train} | {row['cam_seconds']:.0f} |"
        )
    return lines
