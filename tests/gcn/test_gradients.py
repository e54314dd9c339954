"""The closed-form GCN step (wsss.gcn.gradients) against autograd through eqs. (1)-(7)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from wsss.gcn.gradients import ClosedFormStep, LossCoefficients, logit_gradient
from wsss.gcn.losses import PADDING, LossWeights, laplacian_operator, wsgcn_loss
from wsss.gcn.model import gcn_forward
from wsss.gcn.train import DenseBlocks, GcnProblem, GcnSettings, train_gcn
from wsss.graph.sparse import SparseOperator

WEIGHTS = [
    LossWeights(),  # the authors' entropy mean over entries
    LossWeights(entropy_mean="nodes"),  # eq. (5) as printed
    LossWeights(entropy=0.0),
    LossWeights(laplacian=0.0, fg=False),
    LossWeights(laplacian=3.0, laplacian_on_log=True, bg=False),
    LossWeights(entropy_mean="nodes", laplacian=0.5),
    LossWeights(entropy=3.0, laplacian_on_log=True),
]


def _batch(gen: torch.Generator, b: int = 3, n: int = 9, k: int = 4):
    """Seeds with padding, masked outputs, and a random symmetric Laplacian, all float64."""
    sizes, outputs = [9, 6, 7][:b], [4, 2, 3][:b]
    seeds = torch.full((b, n), PADDING)
    class_mask = torch.zeros(b, k, dtype=torch.bool)
    for i, (size, kb) in enumerate(zip(sizes, outputs, strict=True)):
        seeds[i, :size] = torch.randint(0, kb, (size,), generator=gen)
        seeds[i, :size][torch.rand(size, generator=gen) < 0.4] = 255
        class_mask[i, :kb] = True
    pairs = [(i * n + a, i * n + c) for i, size in enumerate(sizes)
             for a in range(size) for c in range(a + 1, size) if torch.rand(1, generator=gen) < 0.5]  # fmt: skip
    src, dst = (torch.tensor(v) for v in zip(*pairs, strict=True))
    weight = torch.rand(len(src), generator=gen, dtype=torch.float64)
    return seeds, class_mask, laplacian_operator(src, dst, weight, b * n)


@pytest.mark.parametrize("weights", WEIGHTS)
def test_logit_gradient_equals_autograd(weights):
    gen = torch.Generator().manual_seed(0)
    seeds, class_mask, lap = _batch(gen)
    logits = torch.randn(*seeds.shape, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    log_q = torch.log_softmax(logits.masked_fill(~class_mask[:, None], -1e9), dim=2)
    loss = wsgcn_loss(log_q, seeds, weights=weights, laplacian=lap, class_mask=class_mask)
    loss["total"].sum().backward()
    coef = LossCoefficients.build(seeds, class_mask, weights, torch.float64)
    grad = logit_gradient(logits.detach().transpose(1, 2), coef, lap if weights.laplacian else None)
    grad = grad.transpose(1, 2)  # computed outputs-first
    assert torch.allclose(grad, logits.grad, atol=1e-12)
    assert grad[seeds == PADDING].abs().max() == 0
    assert grad.masked_select(~class_mask[:, None].expand_as(grad)).abs().max() == 0


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
def test_weight_gradients_equal_autograd(dense, dropout):
    gen = torch.Generator().manual_seed(1)
    seeds, class_mask, lap = _batch(gen)
    b, n = seeds.shape
    a = torch.rand(b, n, n, generator=gen, dtype=torch.float64)  # not symmetric: A^T matters
    a[seeds == PADDING] = 0
    adjacency = DenseBlocks(a) if dense else SparseOperator(torch.block_diag(*a).to_sparse_csr())
    ax = torch.randn(b, n, 5, generator=gen, dtype=torch.float64)
    w1 = torch.randn(b, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(b, 6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    keep = (torch.rand(b, 6, n, generator=gen) > 0.3).double() / 0.7 if dropout else None
    mask = None if keep is None else keep.transpose(1, 2)
    log_q = gcn_forward(ax, adjacency, w1, w2, class_mask=class_mask, dropout_mask=mask)
    wsgcn_loss(log_q, seeds, laplacian=lap, class_mask=class_mask)["total"].sum().backward()
    coef = LossCoefficients.build(seeds, class_mask, LossWeights(), torch.float64)
    g1, g2 = ClosedFormStep(ax, adjacency, coef, lap)(w1.detach(), w2.detach(), keep)
    assert torch.allclose(g1, w1.grad, atol=1e-10) and torch.allclose(g2, w2.grad, atol=1e-10)


def _problem(seed: int, n: int = 30, k: int = 3) -> GcnProblem:
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(n, n, generator=gen)
    seeds = torch.randint(0, k, (n,), generator=gen)
    seeds[torch.rand(n, generator=gen) < 0.5] = 255
    src, dst = torch.triu_indices(n, n, 1)
    keep = torch.rand(len(src), generator=gen) < 0.2
    phi = (src[keep], dst[keep], torch.rand(int(keep.sum()), generator=gen))
    return GcnProblem(adjacency=((a + a.T) / n).to_sparse_csr(), seeds=seeds, num_outputs=k,
                      features=torch.randn(n, 7, generator=gen), phi=phi, seed=seed)  # fmt: skip


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize(("init", "outputs"), [("zero_output", 0), ("glorot", 0),
                                               ("zero_output", 5)])  # fmt: skip
def test_training_matches_autograd_training(weights, init, outputs):
    problems = [_problem(0), _problem(1, n=24, k=2)]
    problems = [dataclasses.replace(p, features=p.features.double(),
                                    adjacency=p.adjacency.double()) for p in problems]  # fmt: skip
    settings = GcnSettings(steps=40, losses=weights, init=init, outputs=outputs)
    fast = train_gcn(problems, settings)
    slow = train_gcn(problems, dataclasses.replace(settings, gradients="autograd"))
    for f, s in zip(fast, slow, strict=True):
        assert (f - s).abs().max() < 1e-9
    early = train_gcn(problems, dataclasses.replace(settings, steps=1))[0]
    assert (fast[0] - early).abs().max() > 1e-3  # the 40 steps did train


def test_dropout_mask_keeps_one_minus_p():
    from wsss.gcn.model import BatchedGCN

    gcn = BatchedGCN(in_features=4, num_outputs=[3, 2], dropout=0.3)
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    mask = gcn.dropout_mask([5000, 3000], gens)
    assert mask.shape == (2, 16, 5000) and mask[1, :, 3000:].abs().max() == 0
    kept = mask[:, :, :3000] > 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005
    torch.testing.assert_close(mask.unique(), torch.tensor([0.0, 1 / 0.7]))
    alone = gcn.dropout_mask([3000], [torch.Generator().manual_seed(1)])
    assert torch.equal(alone[0], mask[1, :, :3000])  # per-image streams


def test_closed_form_step_needs_the_laplacian_when_it_is_on():
    gen = torch.Generator().manual_seed(2)
    seeds, class_mask, _ = _batch(gen)
    coef = LossCoefficients.build(seeds, class_mask, LossWeights(), torch.float64)
    a = DenseBlocks(torch.eye(seeds.shape[1], dtype=torch.float64).expand(3, -1, -1))
    with pytest.raises(ValueError, match="Laplacian"):
        ClosedFormStep(torch.zeros(3, seeds.shape[1], 2, dtype=torch.float64), a, coef)


def test_bad_gradient_engine_is_refused():
    with pytest.raises(ValueError, match="gradients"):
        GcnSettings(gradients="numeric")  # type: ignore[arg-type]


def test_narrow_threads_give_the_same_training(monkeypatch):
    from wsss.gcn.gradients import IntraOpThreads, narrow_threads

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        problems = [_problem(0, n=40), _problem(1, n=33, k=2)]
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        assert narrow_threads(torch.device("cpu")) is None
        wide = train_gcn(problems, GcnSettings(steps=30))
        monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
        assert narrow_threads(torch.device("cpu")) == 1
        narrow = train_gcn(problems, GcnSettings(steps=30))
        assert torch.get_num_threads() == 2  # restored
        for a, b in zip(wide, narrow, strict=True):
            assert torch.equal(a, b)
        with IntraOpThreads(1):
            assert torch.get_num_threads() == 1
            with IntraOpThreads(2):
                assert torch.get_num_threads() == 2
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_laplacian_of_the_graph_matches_autograd():
    """The paper's side experiment: eq. (6) on the pairs of A (not symmetric) instead of Phi."""
    from wsss.gcn.graphs import adjacency_pairs

    problem = dataclasses.replace(_problem(2), features=_problem(2).features.double())
    a = problem.adjacency.to_dense().double()
    a = a / a.sum(1, keepdim=True)  # row-normalised, like every A of wsss.gcn.graphs
    problem = dataclasses.replace(problem, adjacency=a.to_sparse_csr(),
                                  phi=adjacency_pairs(a.to_sparse_csr()))  # fmt: skip
    settings = GcnSettings(steps=30, losses=LossWeights(laplacian=2.0))
    fast = train_gcn([problem], settings)[0]
    slow = train_gcn([problem], dataclasses.replace(settings, gradients="autograd"))[0]
    assert (fast - slow).abs().max() < 1e-9


@pytest.mark.parametrize("weights", WEIGHTS)
def test_merged_absent_outputs_train_as_separate_ones(weights):
    """One output for all absent classes (the default) against one output each (float64)."""
    problems = [_problem(0), _problem(1, n=24, k=2), _problem(2, n=20, k=5)]
    problems = [dataclasses.replace(p, features=p.features.double(),
                                    adjacency=p.adjacency.double()) for p in problems]  # fmt: skip
    # 21 outputs: 18, 19 and 16 absent classes; 6: the last image has only one
    for outputs in (21, 6):
        settings = GcnSettings(steps=40, losses=weights, outputs=outputs)
        merged = train_gcn(problems, settings)
        separate = train_gcn(problems, dataclasses.replace(settings, merge_absent=False))
        for m, s in zip(merged, separate, strict=True):
            assert m.shape == s.shape and (m - s).abs().max() < 1e-10
        # the absent classes do count: with K outputs the training differs
        fewer = train_gcn(problems, dataclasses.replace(settings, outputs=0))
        assert max((m - f).abs().max() for m, f in zip(merged, fewer, strict=True)) > 1e-3
