"""The group classifier: shapes, graph structure, permutation equivariance, loss (eq. 12), training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wsss.group import (
    GroupClassifier,
    GroupGNN,
    GroupLogits,
    ensemble_cams,
    group_loss,
    label_adjacency,
)
from wsss.models.backbones import small_backbone

# images 0-1 share class 0, 1-2 share class 2, image 3 (class 1) is isolated
LABELS = torch.tensor([[[1, 0, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0]]], dtype=torch.float32)


def _model(seed: int = 0, **kwargs) -> GroupClassifier:
    torch.manual_seed(seed)
    backbone = small_backbone(widths=(8, 8, 8, 16, 16))
    return GroupClassifier(backbone=backbone, num_labels=3, **kwargs)


def _images(seed: int = 0, b: int = 1, k: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randn(b, k, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_forward_and_cam_shapes():
    model = _model()
    images = _images(b=2)
    labels = LABELS.expand(2, -1, -1)
    out = model(images, labels)
    assert isinstance(out, GroupLogits)
    assert out.intermediate.shape == out.graph.shape == (2, 4, 3)
    cams = model.eval().cams(images, labels)
    assert cams.intermediate.shape == cams.graph.shape == cams.ensemble.shape == (2, 4, 3, 4, 4)
    torch.testing.assert_close(cams.ensemble, (cams.intermediate + cams.graph) / 2)
    assert (cams.graph >= 0).all()


def test_shape_errors():
    model = _model()
    with pytest.raises(ValueError, match=r"\(B, K, 3, H, W\), got \(4, 3, 32, 32\)"):
        model(_images()[0], LABELS)
    with pytest.raises(ValueError, match=r"expected labels \(1, 4, 3\)"):
        model(_images(), LABELS[:, :, :2])
    with pytest.raises(ValueError, match="steps"):
        GroupGNN(channels=4, steps=0)


def test_intermediate_logits_are_single_image():
    model = _model().eval()
    images = _images()
    group = model(images, LABELS)
    alone = model(images[:, :1], LABELS[:, :1])
    torch.testing.assert_close(group.intermediate[:, :1], alone.intermediate)


def test_messages_follow_the_edges_one_hop_per_round():
    images = _images()
    other = images.clone()
    other[0, 3] = torch.randn(3, 32, 32)  # image 3 shares no class: nobody reads it
    model = _model().eval()
    base = model(images, LABELS).graph
    torch.testing.assert_close(model(other, LABELS).graph[0, :3], base[0, :3])
    other = images.clone()
    other[0, 2] = torch.randn(3, 32, 32)  # image 2 is read by image 1, which image 0 reads
    one_round = _model(steps=1).eval()
    changed, base = one_round(other, LABELS).graph, one_round(images, LABELS).graph
    torch.testing.assert_close(changed[0, [0, 3]], base[0, [0, 3]])
    assert not torch.allclose(changed[0, 1], base[0, 1])
    two_rounds = _model(steps=2).eval()
    changed, base = two_rounds(other, LABELS).graph, two_rounds(images, LABELS).graph
    torch.testing.assert_close(changed[0, 3], base[0, 3])
    assert not torch.allclose(changed[0, 0], base[0, 0])


def test_permuting_the_group_permutes_the_outputs():
    model = _model().eval()
    images = _images()
    perm = torch.tensor([2, 0, 3, 1])
    out = model(images, LABELS)
    permuted = model(images[:, perm], LABELS[:, perm])
    torch.testing.assert_close(permuted.graph, out.graph[:, perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        permuted.intermediate, out.intermediate[:, perm], atol=1e-5, rtol=1e-5
    )
    # and the GNN alone, on random node features
    gnn = GroupGNN(channels=8, steps=2, gru_kernel=3).eval()
    h = torch.randn(1, 4, 8, 3, 3)
    adjacency = label_adjacency(LABELS)
    torch.testing.assert_close(
        gnn(h[:, perm], adjacency[:, perm][:, :, perm]), gnn(h, adjacency)[:, perm]
    )


def test_graph_dropout_only_in_training():
    model = _model(delta_r=0.5)
    images = _images()
    outputs = []
    for seed in range(4):
        torch.manual_seed(seed)
        outputs.append(model(images, LABELS).graph)
    assert any(not torch.allclose(outputs[0], out) for out in outputs[1:])
    model.eval()
    torch.testing.assert_close(model(images, LABELS).graph, model(images, LABELS).graph)
    no_dropout = _model(graph_dropout=False)
    assert no_dropout.gnn.dropout is None


def test_loss_is_eq_12():
    logits = GroupLogits(torch.randn(2, 4, 3), torch.randn(2, 4, 3))
    labels = LABELS.expand(2, -1, -1)
    loss = group_loss(logits, labels, lam=0.4)
    assert loss.shape == (2, 4)
    expected = F.multilabel_soft_margin_loss(logits.graph.flatten(0, 1), labels.flatten(0, 1)) + \
        0.4 * F.multilabel_soft_margin_loss(logits.intermediate.flatten(0, 1), labels.flatten(0, 1))  # fmt: skip
    torch.testing.assert_close(loss.mean(), expected)
    with pytest.raises(ValueError, match="differ"):
        group_loss(logits, labels[:, :, :2])


def test_ensemble_normalized():
    a = torch.tensor([[[0.0, 2.0]], [[1.0, 4.0]]])
    b = torch.tensor([[[1.0, 1.0]], [[0.0, 0.0]]])
    out = ensemble_cams(a, b, normalize=True)
    torch.testing.assert_close(out, torch.tensor([[[0.5, 1.0]], [[0.125, 0.5]]]))


def test_param_groups_split_backbone_and_gnn():
    model = _model()
    backbone, head = model.param_groups(1e-3)
    assert backbone["lr"] == 1e-3 and head["lr"] == pytest.approx(1e-2)
    ids = {id(p) for g in (backbone, head) for p in g["params"]}
    assert ids == {id(p) for p in model.parameters()}


def test_two_training_steps_decrease_the_loss():
    model = _model(seed=3)
    images = _images(seed=4, b=2)
    labels = LABELS.expand(2, -1, -1)
    optimizer = torch.optim.SGD(model.param_groups(0.05), momentum=0.9)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return group_loss(model(images, labels), labels).mean().item()

    before = eval_loss()
    torch.manual_seed(0)
    for _ in range(2):
        model.train()
        loss = group_loss(model(images, labels), labels).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is not None for p in model.gnn.parameters())
    assert eval_loss() < before - 1e-3


@pytest.mark.parametrize("form", ["paper", "authors"])
def test_graph_features_keep_their_training_scale_at_inference(form):
    """T = 3 rounds on ReLU-like node features: with the default evaluation rule the mean
    magnitude of h^T at inference is within 25 % of its mean over training draws; left out at
    inference (the previous behaviour) the layer makes it far larger."""
    gnn = GroupGNN(channels=16, steps=3, drop_form=form, seed=0)
    h0 = torch.relu(2 * torch.randn(1, 4, 16, 6, 6, generator=torch.Generator().manual_seed(0)))
    adjacency = label_adjacency(LABELS)
    torch.manual_seed(1)
    with torch.no_grad():
        trained = torch.stack([gnn.train()(h0, adjacency) for _ in range(100)]).abs().mean()
        gnn.eval()
        expected = gnn(h0, adjacency).abs().mean() / trained
        gnn.set_drop_eval("identity")
        identity = gnn(h0, adjacency).abs().mean() / trained
    assert 0.75 < expected < 1.25
    assert identity > 1.5


def test_shared_parts_do_not_depend_on_the_options():
    """Each GNN layer and readout draws its initial weights from its own stream: the options
    (messages, dropout form or none, T), or a piece drawing from the global stream before them,
    leave every shared weight unchanged, and building them leaves the global stream alone."""

    def build(extra_draws: int = 0, **options) -> tuple[dict, torch.Tensor]:
        torch.manual_seed(3)
        backbone = small_backbone(widths=(8, 8, 8, 16, 16))
        torch.rand(extra_draws)  # e.g. an optional piece with parameters built first
        model = GroupClassifier(backbone=backbone, num_labels=3, seed=3, **options)
        return model.state_dict(), torch.get_rng_state()

    base, stream = build()
    for extra, options in [(0, {"messages": "mean"}), (0, {"messages": "joint", "steps": 2}),
                           (0, {"graph_dropout": False}), (0, {"drop_form": "authors"}),
                           (7, {})]:  # fmt: skip
        state, after = build(extra, **options)
        assert state.keys() == base.keys()
        assert all(torch.equal(state[k], base[k]) for k in state), options
        if not extra:
            assert torch.equal(after, stream), options
    # without its own streams (seed None) the extra draws shift the GNN's initial weights
    torch.manual_seed(3)
    backbone = small_backbone(widths=(8, 8, 8, 16, 16))
    torch.rand(7)
    shifted = GroupClassifier(backbone=backbone, num_labels=3).state_dict()
    assert not torch.equal(shifted["gnn.coattention.p"], base["gnn.coattention.p"])
