"""Calibration figures of the synthetic benchmark at a demo budget (docs/synthetic.md).

    python bench/synth_calibration.py --out runs/calib-s0 [--seed 0] [--version 3]
        [--train 500 --val 200 --size 128] [--backbone small|efficientnet_lite0]
        [--cam-epochs 30 --cam-crop 128 --cam-long-side 112 144 --cam-output-stride 16]
        [--cam-scales 1 0.5 1.5 2]   (default: the demo's cam.scales)
        [--seg-epochs 8 --seg-batch-size 16 --seg-lr 2e-3 --seg-max-grad-norm 5]
        [--seg-output-stride 16] [--seg-backbone-from CAM_RUN] [--threads 2] [--skip seg,cam]

Generates the benchmark into ``<out>/data`` (or uses ``--root``), then measures, on properties of
the data and of the classifier only (``wsss.synth.calibration``):

* data: object pixel share, part share of the objects, objects per image, preferred-scene rate;
* colour: the colour-only oracle on val;
* seg: the demo's segmentation network (``--backbone``, DeepLabV3+ head, the backbone's seg
  preset unless overridden, ImageNet weights where the backbone has them) trained on the train
  ground truth, scored on val at scale 1 without flip (the demo's prediction settings): the
  supervised ceiling;
* cam: the demo's CAM classifier (``--backbone``, its CAM preset unless overridden) and its
  multi-scale, flipped CAMs of the train images (the demo's scales unless ``--cam-scales``), at
  the best background threshold: mIoU, per-object coverage, part and body coverage, false
  positives by scene.

Every training records wall and CPU seconds (``resource.getrusage``, all threads of this
process) and the torch thread count. Each step resumes: a finished step's figures are read back
from ``<out>/steps/<step>.json``. The result goes to ``<out>/calibration.json`` and a table to
stdout. Seeds, random walks, GCNs, group CAMs and segmentation on pseudo labels are never run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from wsss.cam.infer import infer_cams
from wsss.cam.infer import load_trained as load_cam
from wsss.cam.train import resolve_config as cam_config
from wsss.cam.train import train as train_cam
from wsss.data.synthetic import SyntheticSegmentation
from wsss.engine import loop
from wsss.io.atomic import atomic_write_text
from wsss.models import backbones
from wsss.pipeline.config import load_config
from wsss.seg.predict import predict_split
from wsss.seg.train import load_trained as load_seg
from wsss.seg.train import resolve_config as seg_config
from wsss.seg.train import train as train_seg
from wsss.synth import calibration
from wsss.synth.design import GENERATOR_VERSION
from wsss.synth.generate import generate_benchmark

CAM_SCALES = tuple(load_config("demo")["cam"]["scales"])  # the demo's CAM scales
STEPS = ("data", "colour", "seg", "cam")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """``fn()`` and its wall and CPU seconds."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, {"wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu}


def step(out: Path, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a step once: its figures are saved to ``<out>/steps/<name>.json`` and read back."""
    path = out / "steps" / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    result = fn()
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return result


def overrides(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The recipe values given on the command line (None: the preset)."""
    keys = ("epochs", "lr", "batch_size", "crop", "long_side", "output_stride")
    given = {k: getattr(args, f"{prefix}_{k}") for k in keys}
    if given["long_side"] is not None:
        given["long_side"] = tuple(given["long_side"])
    return {k: v for k, v in given.items() if v is not None}


def backbone_weights(cam_run: Path, out: Path) -> Path:
    """``<out>/backbone_init.pt``: the backbone weights of a trained CAM network alone, in the
    form a segmentation run's ``init`` reads (its ``backbone.*`` keys)."""
    state = torch.load(loop.final_path(cam_run), map_location="cpu", weights_only=True)
    weights = {k: v for k, v in state["model"].items() if k.startswith("backbone.")}
    path = out / "backbone_init.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": weights}, path)
    return path


def run_seg(args: argparse.Namespace, root: Path, out: Path) -> dict[str, Any]:
    train, val = SyntheticSegmentation(root, "train"), SyntheticSegmentation(root, "val")
    run = out / "seg_gt"
    init = None if args.seg_backbone_from is None else backbone_weights(args.seg_backbone_from, run)
    config = seg_config(dataset="synthetic", root=root, split="train", labels=None,
                        model="deeplabv3plus", backbone=args.backbone, seed=args.seed,
                        pretrained=backbones.HAS_PRETRAINED[args.backbone],
                        head_channels=args.seg_head_channels,
                        max_grad_norm=args.seg_max_grad_norm, init=init,
                        **overrides(args, "seg"))  # fmt: skip
    _, cost = timed(lambda: train_seg(config, run / "train", dataset=train, progress=False))
    model, _ = load_seg(run / "train", "cpu")
    _, predict_cost = timed(lambda: predict_split(model, val, run / "val", progress=False))
    stats = calibration.segmentation_statistics(val, run / "val")
    return {**stats, "config": config.to_dict(), "train_cost": cost,
            "predict_cost": predict_cost}  # fmt: skip


def run_cam(args: argparse.Namespace, root: Path, out: Path) -> dict[str, Any]:
    train = SyntheticSegmentation(root, "train")
    config = cam_config(dataset="synthetic", root=root, split="train",
                        backbone=args.backbone, seed=args.seed, **overrides(args, "cam"))  # fmt: skip
    run = out / "cam"
    _, cost = timed(lambda: train_cam(config, run / "train", dataset=train, progress=False))
    model, _ = load_cam(run / "train", "cpu")
    _, infer_cost = timed(
        lambda: infer_cams(
            model, train, run / "cams", scales=tuple(args.cam_scales), progress=False
        )
    )
    stats = calibration.cam_statistics(train, run / "cams")
    return {**stats, "config": config.to_dict(), "train_cost": cost, "infer_cost": infer_cost}


def table(result: dict[str, Any]) -> str:
    """The calibration figures as a markdown table."""
    d, c, s, m = (result.get(k) or {} for k in STEPS)

    def f(value: Any, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    def cost(step: dict[str, Any], key: str) -> str:
        c = step.get(key)
        return "-" if not c else f"{c['wall_s']:.0f} / {c['cpu_s']:.0f}"

    rows = [
        ("object pixels (train, % of labelled)", f(d.get("object_pixels"))),
        ("objects per image", f(d.get("objects_per_image"), 2)),
        ("part share of an object, median (p5-p95) %",
         f"{f(d.get('part_share_median'))} ({f(d.get('part_share_p5'))}-"
         f"{f(d.get('part_share_p95'))})"),
        ("scene = first class's preferred scene, %", f(d.get("preferred_scene"))),
        ("colour-only oracle, val mIoU", f(c.get("miou"))),
        ("supervised ceiling (GT), val mIoU", f(s.get("miou"))),
        ("  fg/bg IoU / class accuracy on fg", f"{f(s.get('fg_bg_iou'))} / "
         f"{f(s.get('class_accuracy_on_fg'))}"),
        ("  train seconds wall / CPU", cost(s, "train_cost")),
        ("CAM best threshold / train mIoU", f"{f(m.get('best_threshold'), 2)} / {f(m.get('miou'))}"),
        ("  per-object coverage median (quartiles) %",
         f"{f(m.get('coverage_median'))} ({', '.join(f(q) for q in m.get('coverage_quartiles', []))})"),
        ("  part / body pixels covered %", f"{f(m.get('part_coverage'))} / {f(m.get('body_coverage'))}"),
        ("  FP on preferred / other scenes, % of bg", f"{f(m.get('fp_preferred_scene'), 2)} / "
         f"{f(m.get('fp_other_scene'), 2)}"),
        ("  train seconds wall / CPU", cost(m, "train_cost")),
        ("  CAM inference seconds wall / CPU", cost(m, "infer_cost")),
    ]  # fmt: skip
    lines = ["| figure | value |", "|---|---:|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--root", type=Path, default=None, help="an existing benchmark")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", default=GENERATOR_VERSION)
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--val", type=int, default=200)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--backbone", default="small", choices=sorted(backbones.BACKBONES))
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--seg-head-channels",
        type=int,
        default=None,
        help="DeepLabV3+ ASPP/decoder channels (None: 256)",
    )
    parser.add_argument("--seg-max-grad-norm", type=float, default=None,
                        help="clip the total gradient norm (the demo: 5; None: none)")  # fmt: skip
    parser.add_argument("--seg-backbone-from", type=Path, default=None,
                        help="a CAM run (or its final.pt): the segmentation network's backbone "
                        "starts from its weights instead of ImageNet's")  # fmt: skip
    parser.add_argument("--skip", default="", help="comma-separated steps to skip")
    parser.add_argument("--cam-scales", type=float, nargs="+", default=list(CAM_SCALES),
                        help="CAM inference scales (flip always)")  # fmt: skip
    for prefix in ("cam", "seg"):
        parser.add_argument(f"--{prefix}-epochs", type=int, default=None)
        parser.add_argument(f"--{prefix}-lr", type=float, default=None)
        parser.add_argument(f"--{prefix}-batch-size", type=int, default=None)
        parser.add_argument(f"--{prefix}-crop", type=int, default=None)
        parser.add_argument(f"--{prefix}-long-side", type=int, nargs=2, default=None)
        parser.add_argument(f"--{prefix}-output-stride", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out: Path = args.out
    root = args.root or out / "data"
    if args.root is None:
        generate_benchmark(root, n_train=args.train, n_val=args.val, size=args.size,
                           seed=args.seed, version=args.version, progress=False)  # fmt: skip
    skip = {s for s in args.skip.split(",") if s}
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "data": lambda: calibration.data_statistics(SyntheticSegmentation(root, "train")),
        "colour": lambda: calibration.colour_oracle(
            SyntheticSegmentation(root, "train"), SyntheticSegmentation(root, "val")
        ),
        "seg": lambda: run_seg(args, root, out),
        "cam": lambda: run_cam(args, root, out),
    }
    result: dict[str, Any] = {
        "root": str(root),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average": os.getloadavg(),
    }
    for name in STEPS:
        if name not in skip:
            result[name] = step(out, name, runners[name])
    atomic_write_text(out / "calibration.json", json.dumps(result, indent=2) + "\n")
    print(table(result))


if __name__ == "__main__":
    main()
