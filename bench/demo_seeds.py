"""The demo's main table over several seeds, as mean and spread, and the papers' orderings.

    python bench/demo_seeds.py runs/demo_s0 runs/demo_s1 runs/demo_s2 \
        [--out bench/results/demo_seeds.json] [--md docs/benchmark_table.md]

Each argument is a finished ``wsss run --config demo --seed S`` folder (its ``metrics.json``).
Every row of the report's main table (``wsss.viz.report_tables.stage_rows``) is gathered per seed;
the table gives the mean, the sample standard deviation and the range. Boundary F of the val
rows and the WSGCN ablation rows (``wsss ablate gcn``) are gathered the same way.

The papers' orderings are checked pair by pair on the per-seed differences (the seeds pair the
rows: the same data, CAMs and initialisation): an ordering *holds beyond the spread* when every
seed agrees and the mean difference exceeds twice the standard deviation of the differences;
*within the spread* when the sign of the mean agrees but not beyond; *reversed* otherwise.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from wsss.io.atomic import atomic_write_text
from wsss.viz.report_tables import stage_rows

#: The papers' orderings (left < right), by main-table method names; a name missing from the
#: runs skips the pair.
ORDERINGS: tuple[tuple[str, str, str], ...] = (
    ("CAM", "AffinityNet RW", "WSGCN table 2 / IRNet: CAM < AffinityNet RW"),
    ("AffinityNet RW", "IRNet RW", "IRNet: AffinityNet RW < IRNet RW"),
    ("IRNet RW", "WSGCN-I", "WSGCN: IRNet RW < WSGCN-I"),
    ("WSGCN-I", "WSGCN-I + dCRF", "WSGCN: WSGCN-I < WSGCN-I + dCRF"),
    ("CAM", "Group-WSSS CAM (ensemble)", "Group-WSSS: single-image CAM < ensemble"),
)
#: Boundary F: ES-CRF above DeepLabV3+ (ES-CRF table 1).
BOUNDARY = ("DeepLabV3+", "ES-CRF")


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "values": values,
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def gather(runs: list[Path]) -> dict[str, Any]:
    """Per-row values over the runs (rows present in every run only)."""
    per_run = []
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        rows = stage_rows(metrics["pseudo"], metrics["group_cam"], metrics["val"])
        table = {r.method: (r.stage, r.split, r.miou) for r in rows if r.miou is not None}
        bf = {
            name: m["boundary"]["mean_f"]
            for name, m in metrics["val"].items()
            if (m.get("boundary") or {}).get("mean_f") is not None
        }
        ablation = {
            name: s["miou"]
            for name, s in ((metrics.get("ablation") or {}).get("gcn", {}).get("rows", {})).items()
            if s.get("miou") is not None
        }
        per_run.append({"table": table, "boundary_f": bf, "ablation": ablation,
                        "seed": metrics["config"]["seed"]})  # fmt: skip
    common = [m for m in per_run[0]["table"] if all(m in r["table"] for r in per_run)]
    rows = {}
    for method in common:
        stage, split, _ = per_run[0]["table"][method]
        rows[method] = {"stage": stage, "split": split,
                        **_spread([r["table"][method][2] for r in per_run])}  # fmt: skip
    out: dict[str, Any] = {"runs": [str(r) for r in runs],
                           "seeds": [r["seed"] for r in per_run], "rows": rows}  # fmt: skip
    for key in ("boundary_f", "ablation"):
        names = [m for m in per_run[0][key] if all(m in r[key] for r in per_run)]
        out[key] = {m: _spread([r[key][m] for r in per_run]) for m in names}
    out["orderings"] = [
        _ordering(lo, hi, why, [r["table"][lo][2] for r in per_run],
                  [r["table"][hi][2] for r in per_run])
        for lo, hi, why in ORDERINGS
        if lo in rows and hi in rows
    ]  # fmt: skip
    labels = "WSGCN-I + dCRF"  # the pseudo labels the demo's networks train on
    out["seg_minus_labels"] = {
        net: _spread([r["table"][net][2] - r["table"][labels][2] for r in per_run])
        for net in ("DeepLabV3+", "ES-CRF")
        if net in rows and labels in rows
    }
    lo, hi = BOUNDARY
    if lo in out["boundary_f"] and hi in out["boundary_f"]:
        out["orderings"].append(_ordering(
            lo, hi, "ES-CRF: DeepLabV3+ < ES-CRF in boundary F",
            out["boundary_f"][lo]["values"], out["boundary_f"][hi]["values"],
        ))  # fmt: skip
    return out


def _ordering(lo: str, hi: str, why: str, a: list[float], b: list[float]) -> dict[str, Any]:
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    s = _spread(diffs)
    if all(d > 0 for d in diffs):
        beyond = s["mean"] > 2 * s["std"]
        verdict = "holds beyond the spread" if beyond else "holds at every seed, within 2 sd"
    elif all(d < 0 for d in diffs):
        beyond = -s["mean"] > 2 * s["std"]
        verdict = "reversed beyond the spread" if beyond else "reversed at every seed, within 2 sd"
    else:
        verdict = "signs differ between seeds: noise"
    return {"lower": lo, "higher": hi, "claim": why, "differences": diffs,
            "mean": s["mean"], "std": s["std"], "verdict": verdict}  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    """The table and the orderings as markdown."""
    seeds = ", ".join(str(s) for s in result["seeds"])
    lines = [f"Seeds {seeds}: mean ± standard deviation (min-max).", "",
             "| stage | method | split | mIoU |", "|---|---|---|---:|"]  # fmt: skip
    for method, r in result["rows"].items():
        lines.append(f"| {r['stage']} | {method} | {r['split']} | {r['mean']:.1f} ± "
                     f"{r['std']:.1f} ({r['min']:.1f}-{r['max']:.1f}) |")  # fmt: skip
    if result["boundary_f"]:
        lines += ["", "| val network | boundary F |", "|---|---:|"]
        lines += [f"| {m} | {r['mean']:.1f} ± {r['std']:.1f} |"
                  for m, r in result["boundary_f"].items()]  # fmt: skip
    if result["ablation"]:
        lines += ["", "| WSGCN table 2 row | mIoU |", "|---|---:|"]
        lines += [f"| {m} | {r['mean']:.1f} ± {r['std']:.1f} |"
                  for m, r in result["ablation"].items()]  # fmt: skip
    for net, r in result.get("seg_minus_labels", {}).items():
        lines.append(f"\n{net} (val) minus its pseudo labels WSGCN-I + dCRF (train): "
                     f"{r['mean']:+.1f} ± {r['std']:.1f}")  # fmt: skip
    lines += ["", "| ordering | differences per seed | mean ± sd | verdict |", "|---|---|---|---|"]
    for o in result["orderings"]:
        diffs = ", ".join(f"{d:+.1f}" for d in o["differences"])
        lines.append(f"| {o['claim']} | {diffs} | {o['mean']:+.1f} ± {o['std']:.1f} | "
                     f"{o['verdict']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("bench/results/demo_seeds.json"))
    parser.add_argument("--md", type=Path, default=None, help="also write the markdown here")
    args = parser.parse_args()
    result = gather(args.runs)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    if args.md is not None:
        atomic_write_text(args.md, text)
    print(text)


if __name__ == "__main__":
    main()
