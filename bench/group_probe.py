"""Inside the Group-WSSS GNN of a trained checkpoint (issue 20): message sizes and graph dropout scale.

    python bench/group_probe.py --checkpoint RUN --root DATA [--split train] [--limit 100]
                                [--out bench/results/group_probe.json]

On the first ``--limit`` images of the split, in the inference groups of ``wsss cam --model
group`` (the trained ``K``, scale 1.0, no flip), every round ``t`` of message passing is run by
hand from the checkpoint's layers and measured (means over images and positions):

* ``coattention`` / ``self`` / ``features``: the L2 norm over channels of the neighbours' message
  (under each message rule, ``sum``, ``mean`` and ``joint``, from the same ``h^{t-1}``), of the
  self-edge message and of ``h^{t-1}``, per position; ``ratio`` = co-attention / self;
* ``attended``: ``exp(entropy)`` of a position's co-attention row, the number of positions it
  effectively reads (``per_edge``: within one neighbour, out of ``N``; ``joint``: over all
  neighbours' positions);
* ``variation``: spatial variation, the per-channel standard deviation over positions divided by
  the per-channel mean absolute value (averaged over channels), of the message and the features.

The graph features' scale: the mean ``|h^T|`` of the checkpoint's own rule in evaluation mode
(graph dropout ``expected`` and ``identity``) divided by its mean over ``--draws`` training-mode
passes of the dropout layer (everything else in evaluation mode), in groups of ``K`` and alone.

The graph output, in groups of ``K`` and alone, with either evaluation rule: ``map``, the mean
over classes of the average precision of its image-level logits; ``contrast``, the mean over
(image, GT class) of the class's ReLU CAM averaged inside the class's GT pixels, divided by the
mean of its average over background pixels (the mask resized to the CAM grid, nearest).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wsss.data.registry import create_dataset
from wsss.data.synthetic import META_FILE
from wsss.data.transforms import EvalTransform
from wsss.group.adjacency import label_adjacency, neighbour_mask
from wsss.group.coattention import aggregated_messages, coattention_edges
from wsss.group.infer import load_group_trained
from wsss.group.messages import MESSAGE_NORMS
from wsss.group.sampler import inference_groups
from wsss.group.train import dataset_labels
from wsss.io.atomic import atomic_write_text


def _dataset(args: argparse.Namespace) -> Any:
    name = "synthetic" if (args.root / META_FILE).is_file() else "voc"
    data = create_dataset(name, root=args.root, split=args.split)
    data.ids = data.ids[: args.limit]
    return data


def _groups(args: argparse.Namespace, k: int, seed: int) -> list[tuple[Tensor, Tensor, Tensor]]:
    """``(images (1, K, 3, H, W), labels (1, K, L), masks (K, H, W))`` of every owned image's
    inference group (padding members dropped from the masks' use by ``owned``)."""
    data = _dataset(args)
    transform = EvalTransform()
    out = []
    for group in inference_groups(dataset_labels(data), k, seed=seed):
        samples = [transform(data.load(data.ids[i])) for i in group.members]
        size = tuple(max(s["image"].shape[d] for s in samples) for d in (-2, -1))
        images = torch.cat([F.interpolate(s["image"][None], size=size, mode="bilinear",
                                          align_corners=False) for s in samples])  # fmt: skip
        labels = torch.stack([torch.as_tensor(s["labels"]) for s in samples])
        masks = torch.stack([F.interpolate(torch.as_tensor(s["mask"])[None, None].float(),
                                           size=size, mode="nearest")[0, 0] for s in samples])  # fmt: skip
        out.append((images[None], labels[None], masks, group.owned))
    return out


def _norm(x: Tensor) -> float:
    """Mean over positions of the L2 norm over channels, ``x`` ``(B, K, C, H, W)``."""
    return float(x.norm(dim=2).mean())


def _variation(x: Tensor) -> float:
    flat = x.flatten(3)  # (B, K, C, N)
    return float((flat.std(dim=3) / flat.abs().mean(dim=3).clamp_min(1e-8)).mean())


def _average_precision(scores: Tensor, targets: Tensor) -> float:
    """Mean over classes with a positive of the average precision, ``(N, L)`` each."""
    aps = []
    for c in range(scores.shape[1]):
        positive = targets[:, c] > 0
        if not positive.any():
            continue
        order = torch.argsort(scores[:, c], descending=True)
        hits = positive[order].float()
        precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
    return 100 * sum(aps) / len(aps)


def _contrast(
    cams: Tensor, labels: Tensor, masks: Tensor, offset: int
) -> list[tuple[float, float]]:
    """``(inside, background)`` mean CAM of every (image, GT class), ``cams`` ``(K, L, h, w)``."""
    small = F.interpolate(masks[:, None], size=cams.shape[-2:], mode="nearest")[:, 0].long()
    out = []
    for i in range(cams.shape[0]):
        background = small[i] == 0
        for c in torch.nonzero(labels[i]).flatten().tolist():
            inside = small[i] == c + offset
            if inside.any() and background.any():
                out.append((float(cams[i, c][inside].mean()),
                            float(cams[i, c][background].mean())))  # fmt: skip
    return out


def _attended(h: Tensor, p: Tensor, q: Tensor, adjacency: Tensor) -> tuple[float, float]:
    """Mean ``exp(entropy)`` of the co-attention rows: within each neighbour, and joint."""
    edges = coattention_edges(h, p, q)  # (B, K, K, N, N)
    keep = neighbour_mask(adjacency)
    if not keep.any():
        return float("nan"), float("nan")
    logp = torch.log_softmax(edges, dim=-1)
    per_edge = torch.exp(-(logp.exp() * logp).sum(-1))  # (B, K, K, N)
    b, k, _, n, _ = edges.shape
    joint = edges.masked_fill(~keep[..., None, None], float("-inf")).permute(0, 1, 3, 2, 4)
    joint = joint.reshape(b, k, n, k * n)
    lj = torch.log_softmax(joint, dim=-1)
    entropy = -(lj.exp() * lj.nan_to_num(neginf=0.0)).sum(-1)  # (B, K, N)
    has = keep.any(dim=2)  # nodes with a neighbour
    return float(per_edge[keep].mean()), float(torch.exp(entropy)[has].mean())


@torch.no_grad()
def probe(args: argparse.Namespace) -> dict[str, Any]:
    model, config = load_group_trained(args.checkpoint)
    gnn = model.gnn
    rounds: list[dict[str, list[float]]] = [{} for _ in range(gnn.steps)]
    scale: dict[str, dict[str, list[float]]] = {"groups": {}, "alone": {}}

    def add(store: dict[str, list[float]], key: str, value: float) -> None:
        store.setdefault(key, []).append(value)

    readout: dict[str, dict[str, list]] = {}
    offset = _dataset(args).classes.offset  # class id of label index 0
    for size, where in ((config.group_size, "groups"), (1, "alone")):
        for images, labels, masks, owned in _groups(args, size, config.seed):
            adjacency = label_adjacency(labels)
            for rule in ("expected", "identity"):
                gnn.set_drop_eval(rule)  # type: ignore[arg-type]
                logits = model(images, labels).graph[0, :owned]
                cams = model.cams(images, labels).graph[0, :owned]
                store = readout.setdefault(f"{where}_{rule}", {"logits": [], "labels": [],
                                                               "contrast": []})  # fmt: skip
                store["logits"].append(logits)
                store["labels"].append(labels[0, :owned])
                store["contrast"] += _contrast(cams, labels[0, :owned], masks[:owned], offset)
            gnn.set_drop_eval("expected")
            h = model.node_features(images)
            h0 = h
            if where == "groups":
                for t in range(gnn.steps):
                    stats = rounds[t]
                    self_message = gnn.self_edge(h)
                    add(stats, "features", _norm(h))
                    add(stats, "self", _norm(self_message))
                    add(stats, "variation_features", _variation(h))
                    for rule in MESSAGE_NORMS:
                        co = aggregated_messages(h, gnn.coattention.p, gnn.coattention.q,
                                                 adjacency, rule)  # type: ignore[arg-type]  # fmt: skip
                        add(stats, f"coattention_{rule}", _norm(co))
                        add(stats, f"ratio_{rule}", _norm(co) / max(_norm(self_message), 1e-8))
                        add(stats, f"variation_{rule}", _variation(co))
                    per_edge, joint = _attended(h, gnn.coattention.p, gnn.coattention.q,
                                                adjacency)  # fmt: skip
                    add(stats, "attended_per_edge", per_edge)
                    add(stats, "attended_joint", joint)
                    h = gnn.step(h, adjacency)
                    if gnn.dropout is not None:
                        h = gnn.dropout(h)
            if gnn.dropout is None:
                continue
            gnn.dropout.train()
            draws = []
            for d in range(args.draws):
                torch.manual_seed(d)
                draws.append(float(gnn(h0, adjacency).abs().mean()))
            gnn.dropout.eval()
            train_scale = sum(draws) / len(draws)
            for rule in ("expected", "identity"):
                gnn.set_drop_eval(rule)  # type: ignore[arg-type]
                add(scale[where], rule, float(gnn(h0, adjacency).abs().mean()) / train_scale)
            gnn.set_drop_eval("expected")

    def mean(values: list[float]) -> float:
        kept = [v for v in values if v == v]
        return sum(kept) / len(kept) if kept else float("nan")

    return {
        "checkpoint": str(args.checkpoint), "split": args.split, "images": args.limit,
        "group_size": config.group_size, "messages": config.messages,
        "drop_form": config.drop_form, "graph_dropout": config.graph_dropout,
        "rounds": [{k: mean(v) for k, v in r.items()} for r in rounds],
        "eval_over_train_scale": {w: {k: mean(v) for k, v in s.items()} for w, s in scale.items()},
        "graph_output": {
            key: {"map": _average_precision(torch.cat(v["logits"]), torch.cat(v["labels"])),
                  "contrast": mean([a for a, _ in v["contrast"]])
                  / mean([b for _, b in v["contrast"]])}
            for key, v in readout.items()
        },
        "machine": platform.node(), "threads": torch.get_num_threads(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--draws", type=int, default=8, help="training-mode dropout passes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = probe(args)
    text = json.dumps(result, indent=2) + "\n"
    if args.out is not None:
        atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
