"""Dense CRF speed and agreement: wsss.crf (pure torch) against pydensecrf2, in one run.

    python bench/crf.py [--out bench/results/crf.json] [--runs 5] [--threads 2]

A real VOC sample resized to 500x375, CAM-like probabilities over 21 labels (blurred GT masks plus
coarse noise), 10 mean-field iterations, for the AffinityNet set (probabilities, Gaussian 3/3,
bilateral 80/13/10) and the IRNet set (hard labels with gt_prob 0.7, bilateral 50/5/10). Both sides
are timed end to end from numpy inputs (unary, lattices, inference, numpy output); medians of
``--runs`` runs, alternating. Also records our lattice-build / mean-field split, the load average
(the machine may be shared) and ``OMP_WAIT_POLICY``: with other processes on the cores, torch's
default OpenMP spin-waiting with 2 threads can cost 10x, ``OMP_WAIT_POLICY=PASSIVE`` avoids it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from wsss.crf import PRESETS, crf_inference_label, crf_inference_probs, unary_from_probs
from wsss.crf.dense_crf import _kernels, _mean_field
from wsss.io.atomic import atomic_write_text
from wsss.io.images import read_image, read_label_png

VOC = Path(__file__).resolve().parents[2] / "shared" / "data" / "voc-samples" / "VOC2012"
SAMPLE = "2007_001284"
SIZE = (500, 375)  # (W, H)
N_LABELS = 21


def load_sample() -> tuple[np.ndarray, np.ndarray]:
    """The VOC sample resized to 500x375 (image bilinear, GT nearest)."""
    img = Image.fromarray(read_image(VOC / "JPEGImages" / f"{SAMPLE}.jpg"))
    gt = Image.fromarray(read_label_png(VOC / "SegmentationClass" / f"{SAMPLE}.png"))
    return np.array(img.resize(SIZE, Image.BILINEAR)), np.array(gt.resize(SIZE, Image.NEAREST))


def cam_like_probs(gt: np.ndarray, seed: int = 0) -> np.ndarray:
    """Blurred GT masks plus noise at stride 16, softmaxed over the present labels: (L, H, W)."""
    rng = np.random.default_rng(seed)
    h, w = gt.shape
    logits = np.full((N_LABELS, h, w), -np.inf, dtype=np.float32)
    for c in np.unique(gt[gt < N_LABELS]):
        blob = ndimage.gaussian_filter((gt == c).astype(np.float32), 12)
        noise = ndimage.zoom(rng.normal(size=(h // 16 + 1, w // 16 + 1)), 16, order=1)[:h, :w]
        logits[c] = 6 * blob + 0.8 * noise
    e = np.exp(logits - logits.max(0))
    return (e / e.sum(0)).astype(np.float32)


def reference(img: np.ndarray, unary: np.ndarray, params: dict[str, float]) -> np.ndarray:
    """pydensecrf2 marginals (L, H, W) from a (L, H*W) float32 unary."""
    import pydensecrf.densecrf as dcrf

    h, w = img.shape[:2]
    crf = dcrf.DenseCRF2D(w, h, N_LABELS)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=params["gaussian_sxy"], compat=params["gaussian_compat"])
    crf.addPairwiseBilateral(
        sxy=params["bilateral_sxy"],
        srgb=params["bilateral_srgb"],
        rgbim=np.array(img, order="C"),
        compat=params["bilateral_compat"],
    )
    return np.array(crf.inference(10)).reshape(N_LABELS, h, w)


def cases(img: np.ndarray, probs: np.ndarray) -> dict[str, tuple[Callable, Callable | None]]:
    """Per preset: (ours, pydensecrf2 or None), each returning a label map."""
    labels = probs.argmax(0)
    ours = {
        "psa": lambda: crf_inference_probs(img, probs).argmax(0),
        "irn": lambda: crf_inference_label(img, labels, N_LABELS),
    }
    try:
        from pydensecrf.utils import unary_from_labels, unary_from_softmax
    except ImportError:
        return {name: (fn, None) for name, fn in ours.items()}
    refs = {
        "psa": lambda: reference(
            img, np.ascontiguousarray(unary_from_softmax(probs)), PRESETS["psa"]
        ).argmax(0),
        "irn": lambda: reference(
            img, unary_from_labels(labels, N_LABELS, 0.7, zero_unsure=False), PRESETS["irn"]
        ).argmax(0),
    }
    return {name: (ours[name], refs[name]) for name in ours}


def timed(fn, runs: int) -> tuple[float, np.ndarray]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def split(img: np.ndarray, probs: np.ndarray, runs: int) -> dict[str, float]:
    """Median seconds of our lattice build and of the 10 mean-field iterations (AffinityNet set)."""
    p = PRESETS["psa"]
    image = torch.from_numpy(img).permute(2, 0, 1)[None]
    unary = unary_from_probs(torch.from_numpy(probs)).permute(1, 2, 0).reshape(-1, 1, N_LABELS)
    unary = unary.contiguous()
    weights = (float(p["gaussian_compat"]), float(p["bilateral_compat"]))
    sizes = {k: p[k] for k in ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb")}
    build, kernels = timed(lambda: _kernels(image, **sizes, weights=weights), runs)
    with torch.no_grad():
        iterate, _ = timed(lambda: _mean_field(unary, kernels, (None, None), 10), runs)
    return {"lattice_build_s": build, "mean_field_10_s": iterate}


def run(runs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    img, gt = load_sample()
    probs = cam_like_probs(gt)
    load_before = os.getloadavg()
    results: dict = {}
    for name, (ours, ref) in cases(img, probs).items():
        ours()  # warm-up (first-call allocations)
        entry: dict = {"params": PRESETS[name], "n_labels": N_LABELS, "n_iter": 10}
        if ref is None:
            entry["ours_s"], _ = timed(ours, runs)
        else:
            ref()
            ours_t, ref_t = [], []
            for _ in range(runs):  # alternate, so both see the same machine load
                t, ours_map = timed(ours, 1)
                ours_t.append(t)
                t, ref_map = timed(ref, 1)
                ref_t.append(t)
            entry["ours_s"] = statistics.median(ours_t)
            entry["pydensecrf2_s"] = statistics.median(ref_t)
            entry["ratio_ours_over_pydensecrf2"] = entry["ours_s"] / entry["pydensecrf2_s"]
            entry["argmax_agreement"] = float((ours_map == ref_map).mean())
        results[name] = entry
    results["psa"]["ours_split"] = split(img, probs, runs)
    return {
        "image": f"{SAMPLE} resized to {SIZE[0]}x{SIZE[1]}",
        "runs": runs,
        "torch_threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "pydensecrf2": _version("pydensecrf2"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "results": results,
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here as well")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    text = json.dumps(run(args.runs, args.threads), indent=2) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
