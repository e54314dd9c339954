"""EfficientNet-Lite0 speed: its forward at 512 px against torchvision's ResNet-50, and the
ImageNet-head CAMs of the real VOC photos (seconds per image and CAM mIoU), in one process.

    python bench/lite0.py [--out bench/results/lite0.json] [--runs 5] [--threads 2]

Forward passes: one ``1 x 3 x 512 x 512`` image, eval mode, no gradient; Lite0 as trained on
ImageNet (output stride 32) and as wsss's dilated backbone (16, the default, and 8), ResNet-50 as
torchvision builds it (stride 32, random weights: the speed does not depend on them) and as
wsss's dilated backbone (16). The cases alternate within each run so that all see the same load
on a shared machine; medians of ``--runs`` runs, in wall-clock seconds and in the CPU seconds of
the process (``time.process_time``, summed over its threads: less sensitive to other processes
taking the cores, which stretch the wall clock). The photos (``$WSSS_VOC_SAMPLES``, else the
workplace's ``shared/data/voc-samples/VOC2012``) go through ``wsss cam --model imagenet``'s
function with its defaults (scales 1, 0.5, 1.5, 2 with flips, full-resolution maps).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision

from benchutil import machine, main
from wsss.models.backbones import create_backbone

SIZE = 512
VOC_CANDIDATES = [
    *([Path(os.environ["WSSS_VOC_SAMPLES"])] if os.environ.get("WSSS_VOC_SAMPLES") else []),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "voc-samples" / "VOC2012",
    Path("/work/shared/data/voc-samples/VOC2012"),
]


def networks() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Name -> forward function, each in eval mode."""
    nets: dict[str, torch.nn.Module] = {
        f"lite0_os{s}": create_backbone("efficientnet_lite0", output_stride=s) for s in (32, 16, 8)
    }
    nets["resnet50_torchvision_os32"] = torchvision.models.resnet50(weights=None)
    nets["resnet50_os16"] = create_backbone("resnet50", output_stride=16)
    return {name: net.eval() for name, net in nets.items()}


@torch.inference_mode()
def forward_times(runs: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of one 512 x 512 forward per network (after a warm-up)."""
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    nets = networks()
    wall: dict[str, list[float]] = {name: [] for name in nets}
    cpu: dict[str, list[float]] = {name: [] for name in nets}
    for net in nets.values():
        net(x)
    for _ in range(runs):
        for name, net in nets.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            net(x)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {"wall_s": {name: statistics.median(t) for name, t in wall.items()},
            "cpu_s": {name: statistics.median(t) for name, t in cpu.items()}}  # fmt: skip


def photo_cams() -> dict | None:
    """Seconds per image and CAM scores of ``wsss cam --model imagenet`` on the VOC photos."""
    from wsss.cam.imagenet import infer_imagenet_cams
    from wsss.data.registry import create_dataset
    from wsss.metrics.evaluate import evaluate_cams

    root = next((p for p in VOC_CANDIDATES if (p / "JPEGImages").is_dir()), None)
    if root is None:
        return None
    data = create_dataset("voc", root=root, split="samples")
    with tempfile.TemporaryDirectory() as out:
        start, start_cpu = time.perf_counter(), time.process_time()
        infer_imagenet_cams(data, out, progress=False)
        seconds = (time.perf_counter() - start) / len(data)
        cpu_seconds = (time.process_time() - start_cpu) / len(data)
        scores = evaluate_cams(data, out, progress=False)
    return {"images": len(data), "seconds_per_image": seconds, "cpu_seconds_per_image": cpu_seconds,
            "best_threshold": scores["best_threshold"], "miou": scores["best"]["miou"],
            "iou": scores["best"]["iou"]}  # fmt: skip


def run(runs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    forward = forward_times(runs)
    cams = photo_cams()
    return {
        "input": f"1 x 3 x {SIZE} x {SIZE}",
        **machine(runs, threads, load_before),
        "forward": forward,
        "resnet50_over_lite0": {
            kind: {
                "os32": f["resnet50_torchvision_os32"] / f["lite0_os32"],
                "os16": f["resnet50_os16"] / f["lite0_os16"],
            }
            for kind, f in forward.items()
        },
        "imagenet_cams_on_voc_samples": cams,
    }


if __name__ == "__main__":
    main(run, __doc__)
