"""ES-CRF's pairwise term psi_p: locality probes at initialisation and after training, and cost.

    python bench/escrf_probes.py train --root data/synth --out runs/probe/dot --kernel dot
    python bench/escrf_probes.py probe --root data/synth --run gaussian=runs/probe/gaussian \\
        --run dot=runs/probe/dot --init-seeds 0 1 2 --limit 50 --out bench/results/escrf_probes.json
    python bench/escrf_probes.py score --root data/synth --run runs/probe/dot
    python bench/escrf_probes.py time --out bench/results/escrf_time.json

``train`` is ``wsss train-seg --model escrf --backbone small`` on the ground truth (the ``small``
preset unless given) with the kernel of psi_p chosen (``gaussian``, the default since issue 19, or
``dot``, the form before it) and optionally a fixed spatial ``--window``; it writes these options
to ``probe_options.json`` in the run directory (``train-seg`` has no such options).

``probe`` prints and saves the probes of :mod:`wsss.seg.probes` (means and spreads over the first
``--limit`` images of ``--split``, each image whole and unaugmented): for both kernels at
initialisation (one network per seed of ``--init-seeds``) and for each trained ``--run``.

``score`` labels ``--split`` with a trained run (single scale) into ``<run>/<split>`` and prints
``wsss eval``'s mIoU and 1-pixel boundary F (``wsss predict`` cannot rebuild a ``dot`` or
windowed run: ``train-seg`` does not record these options).

``time`` measures the forward + backward time of the ES-CRF module alone (``small``
configuration: 64 channels, a 16-image batch of 128 px crops, 32x32 features, 2x2 pooled keys) for
both kernels and the windowed Gaussian, alternating, in one process; medians of ``--runs`` runs and their ratio. The
machine may be shared: the load average is recorded, and the ratio is what carries over.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsss.data.registry import create_dataset
from wsss.data.transforms import EvalTransform
from wsss.io.atomic import atomic_write_text
from wsss.seg import registry
from wsss.seg.escrf import KERNELS
from wsss.seg.predict import _as_image
from wsss.seg.probes import PROBES, psi_p_probes

OPTIONS_FILE = "probe_options.json"


@contextlib.contextmanager
def escrf_options(**options: Any) -> Iterator[None]:
    """Make the registry's ``escrf`` build psi_p with ``options`` (``kernel``, ``window``)."""
    saved = registry.SEG_MODELS["escrf"]
    registry.SEG_MODELS["escrf"] = functools.partial(registry._escrf, **options)
    try:
        yield
    finally:
        registry.SEG_MODELS["escrf"] = saved


def train_run(args: argparse.Namespace) -> None:
    from wsss.seg.train import resolve_config, train

    config = resolve_config(dataset="synthetic", root=Path(args.root).resolve(), model="escrf",
                            backbone="small", epochs=args.epochs, seed=args.seed,
                            pairwise=True, superpixel=not args.no_superpixel)  # fmt: skip
    out = Path(args.out)
    data = create_dataset("synthetic", root=args.root, split="train")
    options = {"kernel": args.kernel, "window": args.window}
    with escrf_options(**options):
        train(config, out, dataset=data, progress=False, report=print)
    atomic_write_text(out / OPTIONS_FILE, json.dumps(options) + "\n")


def _images(root: str, split: str, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` images (normalised) and their ground truth (all of one size)."""
    data = create_dataset("synthetic", root=root, split=split)
    t = EvalTransform()
    ids = data.ids[:limit]
    images = [t.pipeline(_as_image(data.load_image(i))).as_subclass(torch.Tensor) for i in ids]
    masks = [torch.from_numpy(data.load_mask(i).astype(np.int64)) for i in ids]
    return torch.stack(images), torch.stack(masks)


def _summary(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over the images (images without objects left out)."""
    return {k: {"mean": float(np.nanmean([r[k] for r in rows])),
                "std": float(np.nanstd([r[k] for r in rows]))} for k in PROBES}  # fmt: skip


def _probe(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor,
           batch: int = 8) -> list[dict[str, float]]:  # fmt: skip
    rows: list[dict[str, float]] = []
    for s in range(0, len(images), batch):
        rows += psi_p_probes(model.eval(), images[s : s + batch], masks[s : s + batch])
    return rows


def probe(args: argparse.Namespace) -> None:
    images, masks = _images(args.root, args.split, args.limit)
    num_classes = create_dataset("synthetic", root=args.root, split=args.split).classes.num_classes
    result: dict[str, Any] = {"images": len(images), "split": args.split, "root": args.root,
                              "radius_px": 12.0, "backbone": args.backbone,
                              "pretrained": args.pretrained, "head_channels": args.head_channels,
                              "init": {}, "trained": {}}  # fmt: skip
    variants = {"gaussian": {"kernel": "gaussian"}, "dot": {"kernel": "dot"},
                "gaussian_window8": {"kernel": "gaussian", "window": 8.0}}  # fmt: skip
    for name, options in variants.items():
        per_seed = []
        for seed in args.init_seeds:
            torch.manual_seed(seed)
            model = registry.create_seg_model("escrf", backbone=args.backbone,
                                              num_classes=num_classes, pretrained=args.pretrained,
                                              head_channels=args.head_channels,
                                              **options)  # fmt: skip
            per_seed.append(_summary(_probe(model, images, masks)))
        result["init"][name] = {"options": options, "seeds": list(args.init_seeds),
                                "per_seed": per_seed}  # fmt: skip
        _print(f"init {name}", per_seed)
    for spec in args.run:
        name, _, folder = spec.partition("=")
        run = Path(folder)
        model, (config, options) = _load(run)
        summary = _summary(_probe(model, images, masks))
        result["trained"][name] = {"run": str(run), "options": options, "seed": config.seed,
                                   "epochs": config.epochs,
                                   "superpixel": config.superpixel, "probes": summary}  # fmt: skip
        _print(f"trained {name} ({options})", [summary])
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")


def _load(run: Path) -> tuple[torch.nn.Module, Any]:
    from wsss.seg.train import load_trained

    saved = run / OPTIONS_FILE
    options = json.loads(saved.read_text()) if saved.is_file() else {"kernel": "gaussian"}
    with escrf_options(**options):
        model, config = load_trained(run)
    return model, (config, options)


def score(args: argparse.Namespace) -> None:
    from wsss.metrics.evaluate import evaluate_predictions
    from wsss.seg.predict import predict_split

    run = Path(args.run)
    model, (config, options) = _load(run)
    data = create_dataset("synthetic", root=args.root, split=args.split)
    out = run / args.split
    predict_split(model, data, out, n_segments=config.n_segments, progress=False,
                  superpixel_cache=run / f"superpixels_{args.split}")  # fmt: skip
    scores = evaluate_predictions(data, out, boundary=True, tolerance=1, progress=False)
    line = {"run": str(run), "options": options, "miou": scores["miou"],
            "boundary_f": scores["boundary"]["mean_f"]}  # fmt: skip
    print(json.dumps(line))


def _print(title: str, summaries: list[dict[str, dict[str, float]]]) -> None:
    cells = []
    for k in PROBES:
        means = [s[k]["mean"] for s in summaries]
        cells.append(f"{k} {np.mean(means):.3f}" + (f" ({min(means):.3f}-{max(means):.3f})"
                                                     if len(means) > 1 else ""))  # fmt: skip
    print(f"{title}: " + ", ".join(cells))


def timing(args: argparse.Namespace) -> None:
    from wsss.seg.escrf import ESCRF

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    features = torch.randn(16, 64, 32, 32, generator=g).relu()
    images = torch.randn(16, 3, 128, 128, generator=g)
    spx = torch.randint(0, 200, (16, 128, 128), generator=g)
    new = {"num_frequencies": 3, "wavelengths": (32.0, 512.0)}
    variants: dict[str, dict[str, Any]] = {
        "gaussian": new, "gaussian_window8": {**new, "window": 8.0},
        "dot": {"kernel": "dot", "embed_channels": 16, "num_frequencies": 8,
                "wavelengths": (8.0, 1024.0)},
    }  # fmt: skip
    modules = {}
    for name, options in variants.items():
        torch.manual_seed(0)
        modules[name] = ESCRF(channels=64, key_stride=2, **options)
    seconds: dict[str, list[float]] = {k: [] for k in modules}
    for _ in range(args.runs + 1):  # the first round warms up
        for kernel, module in modules.items():
            x = features.clone().requires_grad_()
            start = time.perf_counter()
            module(x, images, spx).square().mean().backward()
            seconds[kernel].append(time.perf_counter() - start)
    med = {k: statistics.median(v[1:]) for k, v in seconds.items()}
    result = {"median_seconds": med, "ratio_to_dot": {k: v / med["dot"] for k, v in med.items()},
              "runs": args.runs, "threads": args.threads, "load_average": os.getloadavg(),
              "batch": list(features.shape)}  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--root", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--kernel", choices=KERNELS, default="gaussian")
    t.add_argument("--window", type=float, default=None, help="fixed spatial window, px")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--no-superpixel", action="store_true", help="psi_p only")
    p = sub.add_parser("probe")
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--init-seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--backbone", default="small", help="of the initial networks")
    p.add_argument("--pretrained", action="store_true", help="ImageNet backbone (initial nets)")
    p.add_argument("--head-channels", type=int, default=None, help="e.g. 128 as the demo")
    p.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR (repeatable)")
    p.add_argument("--out", default=None)
    s = sub.add_parser("score")
    s.add_argument("--root", required=True)
    s.add_argument("--run", required=True)
    s.add_argument("--split", default="val")
    m = sub.add_parser("time")
    m.add_argument("--runs", type=int, default=7)
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--out", default=None)
    args = parser.parse_args()
    {"train": train_run, "probe": probe, "score": score, "time": timing}[args.command](args)


if __name__ == "__main__":
    main()
