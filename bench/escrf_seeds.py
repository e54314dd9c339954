"""The ES-CRF ablation (``wsss ablate seg``) over several seeds: mean, spread and paired differences.

    python bench/escrf_seeds.py runs/ablate-seg-s0 runs/ablate-seg-s1 runs/ablate-seg-s2 \
        [--out bench/results/escrf_seeds.json]

Each argument is a finished ``wsss ablate seg --seed S`` folder (its ``seg.json``) made with the
same settings but the seed. The rows of one seed are paired (the same shared weights, batches and
dropout stream at step 0, ``tests/seg/test_ablation.py``), so each row is compared with the first
row (the baseline) seed by seed: a difference *holds beyond the spread* when every seed agrees and
its mean exceeds twice the standard deviation (``demo_seeds.py``'s rule).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from demo_seeds import _ordering, _spread
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text

METRICS = (("miou", "mIoU"), ("boundary_f", "boundary F"))


def gather(folders: list[Path]) -> dict[str, Any]:
    """Per row and metric: the spread over the folders and the paired difference to the baseline.

    Raises:
        WsssError: the folders differ in anything but the seed, or miss a row.
    """
    results = [json.loads((f / "seg.json").read_text(encoding="utf-8")) for f in folders]
    recipes = [{k: v for k, v in r["settings"]["recipe"].items() if k != "seed"} for r in results]
    if any(recipe != recipes[0] for recipe in recipes):
        raise WsssError("the ablations differ in more than the seed", folders[0])
    out: dict[str, Any] = {"folders": [str(f) for f in folders],
                           "seeds": [r["settings"]["recipe"]["seed"] for r in results],
                           "settings": results[0]["settings"], "sources": {}}  # fmt: skip
    for source in results[0]["sources"]:
        per_seed = [r["sources"][source]["rows"] for r in results]
        names = list(per_seed[0])
        if any(list(rows) != names for rows in per_seed):
            raise WsssError(f"the ablations hold different rows for {source}", folders[0])
        base = names[0]
        block: dict[str, Any] = {}
        for name in names:
            block[name] = {}
            for key, label in METRICS:
                values = [rows[name][key] for rows in per_seed]
                if any(v is None for v in values):
                    continue
                entry = {**_spread(values)}
                if name != base:
                    lows = [rows[base][key] for rows in per_seed]
                    entry["vs_baseline"] = _ordering(base, name, f"{base} < {name} in {label}",
                                                     lows, values)  # fmt: skip
                block[name][key] = entry
        out["sources"][source] = block
    return out


def markdown(result: dict[str, Any]) -> str:
    """One table per label source: mean ± sd, and the paired difference to the first row."""
    seeds = ", ".join(str(s) for s in result["seeds"])
    lines = []
    for source, block in result["sources"].items():
        where = "ground truth" if source == "gt" else "pseudo labels"
        lines += [f"Trained on the {where}; seeds {seeds}: mean ± sd; paired difference to the "
                  f"first row per seed [in brackets], mean ± sd and verdict.", "",
                  "| row | mIoU | vs baseline | boundary F | vs baseline |",
                  "|---|---:|---|---:|---|"]  # fmt: skip
        for name, metrics in block.items():
            cells = []
            for key, _ in METRICS:
                m = metrics.get(key)
                if m is None:
                    cells += ["-", "-"]
                    continue
                cells.append(f"{m['mean']:.2f} ± {m['std']:.2f}")
                o = m.get("vs_baseline")
                if o is None:
                    cells.append("(baseline)")
                else:
                    diffs = ", ".join(f"{d:+.2f}" for d in o["differences"])
                    cells.append(f"{o['mean']:+.2f} ± {o['std']:.2f} [{diffs}], {o['verdict']}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("bench/results/escrf_seeds.json"))
    args = parser.parse_args()
    result = gather(args.folders)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
