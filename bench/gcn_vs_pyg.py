"""WSGCN's GCN: ``wsss.gcn.train_gcn`` against two PyTorch Geometric ``GCNConv`` layers, same
sparse graph, trained the same way.

    pip install -e ".[bench]"    # torch-geometric, a benchmark-only extra
    python bench/gcn_vs_pyg.py [--out bench/results/gcn_vs_pyg.json] [--runs 3]

PyG's ``GCNConv`` normalises by default: it adds self-loops and uses the symmetric
``D^-1/2 (A + I) D^-1/2``. WSGCN's graph is ``A~ = row-normalise(max(M, M^T) + I)``
(:mod:`wsss.gcn.graphs`), which already holds the self-loops. For the same model, both layers get
the same ``A~`` as edge weights with ``normalize=False`` (no self-loops added) and
``bias=False`` (eq. 1 has no bias). ``GCNConv`` multiplies by the weight first and then
propagates, ``A~ (V W1)`` at every step, as the authors' code does.

Two ways of giving PyG the graph are timed:

* ``edge_index``: ``edge_index = [col, row]`` (messages flow from ``j`` to ``i`` for
  ``A~[i, j]``) and ``edge_weight``: the default way, gather and scatter over the edges;
* ``sparse_csr``: ``A~`` itself as a ``torch.sparse_csr`` ``adj_t``, which ``GCNConv`` multiplies
  with ``torch.sparse.mm`` (PyG's fast path for a fixed graph).

Both train with the losses of eqs. (2)-(6) written out (``bench/gcn_reference.py``; the
Laplacian as a sum over the ``Phi`` pairs), ``torch.optim.Adam``, SPEC section 4's settings, the
initial weights and dropout masks ``train_gcn`` draws (so the comparison sees only the order of
floating point operations). Timed: the 250 steps, median of ``--runs``, the three methods
interleaved. Inputs (``bench/gcn_inputs.py``): the 6 VOC photos at full size with graph (c),
and ``bench/propagation_gcn.py``'s synthetic graph (b) at 94x125.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path
from typing import Any

import torch
from torch_geometric.nn import GCNConv

from bench_common import VOC_SAMPLES, agreement, finish, machine, timed
from gcn_inputs import NamedProblem, photo_ids, photo_problem, synthetic_problem
from gcn_reference import (
    PAPER_SETTINGS,
    LibraryDraws,
    hidden_dropout,
    pair_laplacian,
    train_autograd,
)
from wsss.gcn.train import train_gcn
from wsss.graph.sparse import csr_row_indices


class PygGCN:
    """Two ``GCNConv`` layers, ``log_softmax(A~ relu(A~ V W1) W2)``, on a fixed graph.

    Args:
        graph: ``(edge_index, edge_weight)`` or a sparse CSR ``adj_t`` (then ``edge_weight`` None).
        features: ``V``.
        w1: Initial ``W1``; w2: initial ``W2`` (copied into the layers' ``lin.weight``).
        dropout: Dropout of the hidden layer when no mask is given.

    Shapes:
        features: ``(N, D)``; w1: ``(D, H)``; w2: ``(H, K)``.
    """

    def __init__(self, graph: tuple[torch.Tensor, torch.Tensor | None], features: torch.Tensor,
                 w1: torch.Tensor, w2: torch.Tensor, dropout: float) -> None:  # fmt: skip
        self.edges, self.weights = graph
        self.features, self.dropout = features, dropout
        options = {"bias": False, "normalize": False, "add_self_loops": False}
        self.conv1 = GCNConv(w1.shape[0], w1.shape[1], **options).to(w1.dtype)
        self.conv2 = GCNConv(w2.shape[0], w2.shape[1], **options).to(w2.dtype)
        with torch.no_grad():
            self.conv1.lin.weight.copy_(w1.transpose(0, 1))
            self.conv2.lin.weight.copy_(w2.transpose(0, 1))

    def parameters(self) -> list[torch.Tensor]:
        """The trained weights."""
        return [*self.conv1.parameters(), *self.conv2.parameters()]

    def __call__(self, keep: torch.Tensor | None, training: bool) -> torch.Tensor:
        h = torch.relu(self.conv1(self.features, self.edges, self.weights))
        h = hidden_dropout(h, keep, self.dropout, training)
        return torch.log_softmax(self.conv2(h, self.edges, self.weights), dim=1)


def pyg_graphs(adjacency: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """``A~`` (CSR) as PyG's ``edge_index`` + ``edge_weight``, and as a sparse ``adj_t``."""
    rows, cols = csr_row_indices(adjacency), adjacency.col_indices()
    return {"edge_index": (torch.stack([cols, rows]), adjacency.values()),
            "sparse_csr": (adjacency, None)}  # fmt: skip


def train_pyg(named: NamedProblem, graph: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
    """PyG's GCN trained on the problem with ``train_gcn``'s draws; ``Q`` after training."""
    p = named.problem
    draws = LibraryDraws(p, PAPER_SETTINGS, p.features.dtype)
    model = PygGCN(graph, p.features, draws.w1, draws.w2, PAPER_SETTINGS.dropout)
    src, dst, weight = p.phi  # type: ignore[misc]
    laplacian = pair_laplacian(src, dst, weight.to(p.features.dtype), p.features.shape[0])
    return train_autograd(model, model.parameters(), p.seeds, laplacian, PAPER_SETTINGS, draws)


def compare(named: NamedProblem, runs: int) -> dict[str, Any]:
    """Interleaved timings of ours and both PyG variants, and their agreement."""
    graphs = pyg_graphs(named.problem.adjacency)
    methods = {"ours": lambda: train_gcn([named.problem], PAPER_SETTINGS)[0]}
    methods |= {f"pyg_{k}": lambda g=g: train_pyg(named, g) for k, g in graphs.items()}
    train_gcn([named.problem], dataclasses.replace(PAPER_SETTINGS, steps=3))  # warm-up
    times: dict[str, list[float]] = {k: [] for k in methods}
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(runs):
        for name, fn in methods.items():
            seconds, outputs[name] = timed(fn)
            times[name].append(seconds)
    median = {k: statistics.median(v) for k, v in times.items()}
    row: dict[str, Any] = {**named.describe(), "seconds_250_steps": median, "seconds_runs": times}
    for name in graphs:
        key = f"pyg_{name}"
        row[f"speedup_ours_over_{key}"] = median[key] / median["ours"]
        row[f"ours_vs_{key}"] = agreement(outputs["ours"], outputs[key])
    seed1 = train_gcn([dataclasses.replace(named.problem, seed=1)], PAPER_SETTINGS)[0]
    row["ours_seed0_vs_seed1_label_agreement"] = agreement(outputs["ours"], seed1)[
        "label_agreement"
    ]
    print(row, flush=True)
    return row


def float64_check(root: Path, ids: list[str], longer: int) -> list[dict[str, Any]]:
    """Ours against PyG (``edge_index``) in float64 on small photos: the same maths."""
    rows = []
    for image_id in ids:
        named = photo_problem(root, image_id, longer, torch.float64)
        ours = train_gcn([named.problem], PAPER_SETTINGS)[0]
        pyg = train_pyg(named, pyg_graphs(named.problem.adjacency)["edge_index"])
        rows.append({**named.describe(), **agreement(ours, pyg)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/gcn_vs_pyg.json"))
    parser.add_argument("--voc", type=Path, default=VOC_SAMPLES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=160, help="longer side of the float64 check")
    args = parser.parse_args()
    import torch_geometric

    result: dict[str, Any] = {**machine(args.threads), "torch_geometric": torch_geometric.__version__,
                              "settings": dataclasses.asdict(PAPER_SETTINGS)}  # fmt: skip
    ids = photo_ids(args.voc)
    result["float64"] = float64_check(args.voc, ids, args.small)
    problems = [photo_problem(args.voc, i) for i in ids] + [synthetic_problem()]
    result["full_size"] = [compare(named, args.runs) for named in problems]
    finish(result, args.out)


if __name__ == "__main__":
    main()
