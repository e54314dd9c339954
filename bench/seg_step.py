"""Cost of one training step of the demo's segmentation networks, and of the cheaper settings
measured against it, in one process (docs/benchmark.md#time, issue 12).

    python bench/seg_step.py [--out bench/results/seg_step.json] [--runs 5] [--threads 2]

The demo's step (configs/demo.yaml ``seg``): EfficientNet-Lite0 at output stride 16, head 128
channels, a batch of 16 crops of 112 x 112, 11 classes, cross-entropy, momentum SGD; DeepLabV3+ and
ES-CRF (psi_p + psi_s on a superpixel map of 60 regions). Cases, each against the demo's float32
step of the same network: ``full_taps``, ASPP's dilated convolutions with all their taps (plain
``nn.Conv2d``: the step before :mod:`wsss.seg.dilated`, the same outputs); the head at 64 channels;
channels-last tensors; bfloat16 autocast (``torch.autocast("cpu")``); both. Weights are random (the
speed does not depend on them). The cases alternate within each run, so that all see the same load;
medians of ``--runs`` runs of 3 steps, wall and CPU seconds per step (``time.process_time``, all
threads).

``demo_seg_floor_s``: the demo's three networks (DeepLabV3+ on pseudo labels, ES-CRF, DeepLabV3+
on the ground truth) at 8 epochs of 500 images, batch 16 = 250 steps each, at the measured
float32 step: the training alone, without data loading or evaluation.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchutil import machine, main
from wsss.seg.dilated import TrimmedConv2d
from wsss.seg.registry import create_seg_model

BATCH, SIZE, CLASSES, STEPS = 16, 112, 11, 250
CASES: dict[str, dict[str, object]] = {
    "fp32": {},
    "full_taps": {"full_taps": True},
    "head64": {"head_channels": 64},
    "channels_last": {"channels_last": True},
    "bf16": {"bf16": True},
    "bf16_channels_last": {"bf16": True, "channels_last": True},
}


def make_step(head: str, case: dict[str, object]) -> Callable[[], None]:
    """One training step (forward, loss, backward, SGD update) of ``head`` under ``case``."""
    gen = torch.Generator().manual_seed(0)
    model = create_seg_model(head, backbone="efficientnet_lite0", num_classes=CLASSES,
                             pretrained=False, freeze_bn=True,
                             head_channels=int(case.get("head_channels", 128)))  # type: ignore[arg-type]  # fmt: skip
    if case.get("full_taps"):
        for m in model.modules():
            if type(m) is TrimmedConv2d:
                m.__class__ = nn.Conv2d
    model.train()
    x = torch.randn(BATCH, 3, SIZE, SIZE, generator=gen)
    y = torch.randint(0, CLASSES, (BATCH, SIZE, SIZE), generator=gen)
    superpixels = torch.randint(0, 60, (BATCH, SIZE, SIZE), generator=gen)
    if case.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    bf16 = bool(case.get("bf16"))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x, superpixels) if model.needs_superpixels else model(x)
        loss = F.cross_entropy(out.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def run(runs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    load_before = os.getloadavg()[0]
    steps = {f"{head}/{name}": make_step(head, case)
             for head in ("deeplabv3plus", "escrf") for name, case in CASES.items()}  # fmt: skip
    for step in steps.values():
        step()  # warm-up
    wall: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(runs):
        for name, step in steps.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(3):
                step()
            wall[name].append((time.perf_counter() - start) / 3)
            cpu[name].append((time.process_time() - start_cpu) / 3)
    wall_s = {name: statistics.median(t) for name, t in wall.items()}
    ratios = {name: wall_s[name] / wall_s[name.split("/")[0] + "/fp32"] for name in steps}
    floor = STEPS * (2 * wall_s["deeplabv3plus/fp32"] + wall_s["escrf/fp32"])
    return {
        "input": f"{BATCH} x 3 x {SIZE} x {SIZE}, Lite0 OS16, {CLASSES} classes",
        **machine(runs, threads, load_before),
        "wall_s_per_step": wall_s,
        "cpu_s_per_step": {name: statistics.median(t) for name, t in cpu.items()},
        "over_fp32": ratios,
        "demo_seg_floor_s": floor,
    }


if __name__ == "__main__":
    main(run, __doc__)
