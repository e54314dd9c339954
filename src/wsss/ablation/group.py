"""Group-WSSS table 3 on a dataset: the single-image CAM next to the group model's outputs and
variants (K, T, graph dropout), each scored by the CAM mIoU at its best background threshold,
and rows the paper does not have: each image alone in its inference group, the normalised
message rules and the graph dropout's scale (:data:`GROUP_ROWS`).

Every network is trained with one recipe and seed; the group networks start from the single
row's trained classifier (``init``, the CPU stand-in for the paper's ImageNet weights; turn it
off to train them from their own initialisation). Rows sharing a network (the full model's
intermediate, graph and self-ensembling outputs) share its training and, at the same inference
group size and dropout rule, one inference pass.

Rows are paired: at one seed every network starts from the same weights in every part it
shares with the full model (the backbone and readouts from the single row, each GNN layer from
its own stream, :mod:`wsss.group.seeding`), sees the same augmented images (seeded by image
index) and draws the same graph dropout numbers while its ``K`` and ``T`` are the full model's.
:func:`ablate_group_seeds` runs the table at several seeds (one folder each) and writes the
mean and spread of every row and the paired difference of each "alone" row from its groups.
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

__all__ = ["GROUP_ROWS", "ROW_SETS", "GroupRow", "ablate_group", "ablate_group_seeds",
           "group_seed_table", "group_table", "row_config", "select_rows"]  # fmt: skip


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
        messages: Neighbours' messages in eq. (8): ``sum`` (the paper), ``mean`` or ``joint``.
        drop_form: Graph dropout in training: ``paper`` (``h s``) or ``authors``
            (``(h s + h) / 2``).
        drop_eval: Graph dropout at inference: ``expected`` (its mean) or ``identity``.
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
    messages: str = "sum"
    drop_form: str = "paper"
    drop_eval: str = "expected"

    @property
    def net(self) -> str:
        """Name of the trained network (rows differing only at inference share it)."""
        if self.model == "single":
            return "single"
        return (f"k{self.group_size}_t{self.rounds}" + ("" if self.graph_dropout else "_nodrop")
                + ("" if self.messages == "sum" else f"_{self.messages}")
                + ("" if self.drop_form == "paper" else f"_{self.drop_form}"))  # fmt: skip

    def inference(self, trained_k: int) -> tuple[str, int, str]:
        """What an inference pass shares: the network, the group size and the dropout rule."""
        return self.net, self.infer_group_size or trained_k, self.drop_eval


def _message_rows(messages: str, label: str) -> tuple[GroupRow, ...]:
    """Ensemble and graph outputs of one message rule, in groups of K and each image alone."""
    aspect = "Messages (not in the paper)" if messages != "sum" else "Group context"
    key = "" if messages == "sum" else f"{messages}_"
    rows = [GroupRow(f"{label}, graph output", f"{key}graph", aspect, output="graph",
                     messages=messages),
            GroupRow(f"{label}, graph output, alone", f"{key}graph_alone", aspect,
                     output="graph", infer_group_size=1, messages=messages),
            GroupRow(f"{label}, alone", f"{key}alone", aspect, infer_group_size=1,
                     messages=messages)]  # fmt: skip
    if messages != "sum":  # the sum's ensemble in groups is the full model's row
        rows.insert(0, GroupRow(label, f"{key}ensemble", aspect, messages=messages))
    return tuple(rows)


#: The rows: the single-image baseline, the full model, the variants of table 3, and (not in
#: the paper) every image alone in its inference group, the normalised message rules (each in
#: groups and alone) and the graph dropout's scale (the layer left out at inference, the
#: previous behaviour, and the authors' ``(h s + h) / 2``).
GROUP_ROWS: tuple[GroupRow, ...] = (
    GroupRow("single-image CAM", "single", "Baseline", model="single", output="-"),
    GroupRow("T = 3, K = 4 (self-ensembling)", "full", "Full model"),
    GroupRow("K = 3", "k3", "Node number", group_size=3),
    GroupRow("K = 5", "k5", "Node number", group_size=5),
    GroupRow("T = 2", "t2", "Message passing", rounds=2),
    GroupRow("w/o dropout", "no_dropout", "Graph dropout", graph_dropout=False),
    GroupRow("intermediate output", "intermediate", "Self-ensembling", output="intermediate"),
    GroupRow("graph output", "graph", "Self-ensembling", output="graph"),
    *_message_rows("sum", "sum (eq. 8)")[1:],
    *_message_rows("mean", "mean over neighbours"),
    *_message_rows("joint", "softmax over the group"),
    GroupRow("left out at inference (previous)", "drop_identity", "Dropout scale",
             drop_eval="identity"),
    GroupRow("left out at inference, graph output", "drop_identity_graph", "Dropout scale",
             output="graph", drop_eval="identity"),
    GroupRow("left out at inference, graph output, alone", "drop_identity_graph_alone",
             "Dropout scale", output="graph", infer_group_size=1, drop_eval="identity"),
    GroupRow("authors' (h s + h) / 2", "drop_authors", "Dropout scale", drop_form="authors"),
    GroupRow("authors' (h s + h) / 2, graph output", "drop_authors_graph", "Dropout scale",
             output="graph", drop_form="authors"),
)  # fmt: skip

#: Named subsets of :data:`GROUP_ROWS` by key (``--rows``); each starts with the single row.
ROW_SETS: dict[str, tuple[str, ...]] = {
    "all": tuple(r.key for r in GROUP_ROWS),
    "paper": ("single", "full", "k3", "k5", "t2", "no_dropout", "intermediate", "graph"),
    "messages": ("single", "full", "graph", "graph_alone", "alone",
                 *(f"{m}_{k}" for m in ("mean", "joint")
                   for k in ("ensemble", "graph", "graph_alone", "alone"))),
    "dropout": ("single", "full", "graph", "graph_alone", "no_dropout", "drop_identity",
                "drop_identity_graph", "drop_identity_graph_alone", "drop_authors",
                "drop_authors_graph"),
}  # fmt: skip


def select_rows(spec: str | Sequence[str]) -> tuple[GroupRow, ...]:
    """Rows of :data:`GROUP_ROWS` by set names (:data:`ROW_SETS`) and row keys, in table order,
    always with the single-image baseline (the group networks start from it).

    Args:
        spec: ``"messages"``, ``"paper,drop_authors"``, or a sequence of names and keys.

    Raises:
        WsssError: an unknown name.
    """
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    by_key = {r.key: r for r in GROUP_ROWS}
    unknown = [n for n in names if n and n not in ROW_SETS and n not in by_key]
    if unknown:
        raise WsssError(f"unknown ablation row(s) {unknown}; sets: {', '.join(ROW_SETS)}; "
                        f"rows: {', '.join(by_key)}")  # fmt: skip
    keys = {"single"} | {k for n in names if n for k in ROW_SETS.get(n, (n,))}
    return tuple(r for r in GROUP_ROWS if r.key in keys)


def row_config(row: GroupRow, base: Any) -> Any:
    """The :class:`~wsss.group.train.GroupTrainConfig` of a group row: ``base`` (the full
    model's recipe) with the row's K, T, dropout and message options."""
    return dataclasses.replace(base, group_size=row.group_size, steps=row.rounds,
                               graph_dropout=row.graph_dropout, messages=row.messages,
                               drop_form=row.drop_form)  # fmt: skip


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
    return train_group(row_config(row, plan.group), run, dataset=plan.train, device=plan.device, workers=plan.workers,
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

        group, config = load_group_trained(final, dev, drop_eval=row.drop_eval)
        size = row.infer_group_size or config.group_size
        same = row.inference(config.group_size)
        folders = {r.output: plan.out / "cams" / r.key for r in rows
                   if r.inference(config.group_size) == same}  # fmt: skip
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
    long_side: tuple[int, int] | None = None, train_limit: int | None = None,
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
        long_side: Range of the random long-side resize of both (None: the presets').
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
              "crop": crop, "long_side": None if long_side is None else tuple(long_side),
              "seed": seed}  # fmt: skip
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


def ablate_group_seeds(
    root: str | Path, out: str | Path, *, seeds: Sequence[int], report: Callable[[str], None]
    | None = None, **options: Any,
) -> dict[str, Any]:  # fmt: skip
    """:func:`ablate_group` at every seed, into ``<out>/seed<s>``, and the summary over seeds.

    Every seed trains its own single-image network and group networks (initialisation, group
    order, augmentation and graph dropout all follow the seed; the data stay the same). The
    summary (``<out>/group_seeds.json`` and ``.md``, rewritten after every seed) gives each
    row's mean and sample standard deviation over the finished seeds, and the paired difference
    of every "alone" row from the same network's row in groups of ``K``.

    Args:
        root: Dataset root.
        out: Output folder (one sub-folder per seed; rerun to resume).
        seeds: The seeds (at least one, distinct).
        report: Called with a line after each finished row.
        **options: Further arguments of :func:`ablate_group` (not ``seed``).

    Returns:
        ``{"seeds": [...], "runs": {seed: ablate_group result}}`` (what the JSON holds).

    Raises:
        WsssError: no seeds or repeated ones, and the errors of :func:`ablate_group`.
    """
    chosen = [int(s) for s in seeds]
    if not chosen or len(set(chosen)) != len(chosen) or min(chosen) < 0:
        raise WsssError(f"seeds must be distinct non-negative integers, got {list(seeds)}")
    out = Path(out)
    summary: dict[str, Any] = {"seeds": [], "runs": {}}
    for seed in chosen:
        result = ablate_group(root, out / f"seed{seed}", seed=seed, report=report, **options)
        summary["seeds"].append(seed)
        summary["runs"][str(seed)] = result
        if is_main_process():
            atomic_write_text(out / "group_seeds.json", json.dumps(summary, indent=2) + "\n")
            atomic_write_text(out / "group_seeds.md", "\n".join(group_seed_table(summary)) + "\n")
    return summary


def _mean_sd(values: Sequence[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:.2f}"
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.2f} ± {sd:.2f}"


def group_seed_table(summary: dict[str, Any]) -> list[str]:
    """Markdown lines: every row's CAM mIoU per seed with mean ± sample standard deviation, then
    the paired difference (alone minus groups) of each "alone" row, per seed and over seeds."""
    seeds = [str(s) for s in summary["seeds"]]
    runs = [summary["runs"][s]["rows"] for s in seeds]
    first = summary["runs"][seeds[0]]["settings"] if seeds else None
    lines = []
    if first is not None:
        g = first["group"]
        lines += [f"Group-WSSS ablation at seeds {', '.join(seeds)}: backbone {g['backbone']}, "
                  f"group {g['epochs']} epochs, trained on {first['train_images']} images, CAMs "
                  f"of {first['eval_images']} images of {first['eval_split']} (CAM mIoU at the "
                  "best background threshold, %; mean ± sample standard deviation)", ""]  # fmt: skip
    cells = " | ".join(f"seed {s}" for s in seeds)
    lines += [f"| aspect | variant | output | K at inference | {cells} | mean |",
              "|---|---|---|---:|" + "---:|" * (len(seeds) + 1)]  # fmt: skip
    names = [n for n in (runs[0] if runs else {}) if all(n in r for r in runs)]
    for name in names:
        row = runs[0][name]
        values = [r[name]["miou"] for r in runs]
        size = row.get("infer_group_size") or (
            row["group_size"] if row["model"] == "group" else "-"
        )
        lines.append(
            f"| {row['aspect']} | {name} | {row['output']} | {size} | "
            + " | ".join(f"{v:.2f}" for v in values)
            + f" | {_mean_sd(values)} |"
        )
    pairs = [(name, _grouped_twin(runs[0], name)) for name in names
             if runs[0][name].get("infer_group_size") == 1]  # fmt: skip
    pairs = [(alone, grouped) for alone, grouped in pairs if grouped is not None]
    if pairs:
        lines += ["", "Paired: each image alone minus the same network and output in groups "
                  "(mIoU points; > 0: the other images' messages hurt)", "",
                  f"| alone row | groups row | {cells} | mean |",
                  "|---|---|" + "---:|" * (len(seeds) + 1)]  # fmt: skip
        for alone, grouped in pairs:
            diffs = [r[alone]["miou"] - r[grouped]["miou"] for r in runs]
            lines.append(f"| {alone} | {grouped} | " + " | ".join(f"{d:+.2f}" for d in diffs)
                         + f" | {_mean_sd(diffs)} |")  # fmt: skip
    return lines


def _grouped_twin(rows: dict[str, Any], name: str) -> str | None:
    """The row of the same network, output and dropout rule as ``name`` in groups of K."""
    alone = rows[name]
    for other, row in rows.items():
        if (row.get("network") == alone.get("network") and row["output"] == alone["output"]
                and row.get("drop_eval", "expected") == alone.get("drop_eval", "expected")
                and not row.get("infer_group_size")):  # fmt: skip
            return other
    return None
