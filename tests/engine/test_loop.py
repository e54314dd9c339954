"""The training loop: resume inside an epoch to the same bytes, the time cap, the log."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from wsss.engine import loop
from wsss.engine.training import make_sgd, seed_everything, set_poly_lr


class Points(torch.utils.data.Dataset):
    """Sample ``(epoch, i)``: a fixed point plus noise drawn from torch's generator (as an
    augmentation would), so the data stream depends on the RNG state the loop restores."""

    def __init__(self, n: int = 24) -> None:
        self.x = torch.linspace(-1, 1, n).unsqueeze(1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        _epoch, i = key
        x = self.x[i] + 0.01 * torch.randn(1)
        return {"x": x, "y": 3 * x - 1}


class Interrupt(Exception):
    pass


def make_job(out: Path, *, fail_at: int | None = None) -> loop.Training:
    seed_everything(0, deterministic=False)
    module = nn.Sequential(nn.Linear(1, 8), nn.Dropout(0.3), nn.Linear(8, 1))
    optimizer = make_sgd([{"params": module.parameters(), "lr": 0.05}], momentum=0.9)
    steps = {"n": 0}

    def step(model: nn.Module, batch: dict[str, torch.Tensor]) -> loop.StepOutput:
        steps["n"] += 1
        if fail_at is not None and steps["n"] > fail_at:
            raise Interrupt
        per_item = ((model(batch["x"]) - batch["y"]) ** 2).squeeze(1)
        return loop.mean_loss(per_item, 4)

    order = torch.Generator().manual_seed(1)
    perms = [torch.randperm(24, generator=order).tolist() for _ in range(3)]
    return loop.Training(
        module=module, optimizer=optimizer, samples=Points(),
        batches=lambda e: [[(e, i) for i in perms[e][k : k + 4]] for k in range(0, 24, 4)],
        step=step, set_lr=lambda _e, it: set_poly_lr(optimizer, it, 18), epochs=3,
        config={"name": "points"}, final={"extra": 1},
    )  # fmt: skip


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_inside_an_epoch_gives_the_same_weights(tmp_path: Path) -> None:
    cpu = torch.device("cpu")
    whole = loop.fit(make_job(tmp_path / "a"), _mk(tmp_path / "a"), device=cpu, progress=False)
    with pytest.raises(Interrupt):  # dies at the 10th step (epoch 2, step 4 of 6)
        loop.fit(make_job(tmp_path / "b", fail_at=9), _mk(tmp_path / "b"), device=cpu,
                 progress=False, checkpoint_every=2)  # fmt: skip
    state = torch.load(tmp_path / "b" / loop.CHECKPOINT_FILE, weights_only=True)
    assert (state["epoch"], state["step"], state["iteration"]) == (1, 2, 8)
    resumed = loop.fit(make_job(tmp_path / "b"), tmp_path / "b", device=cpu, progress=False,
                       checkpoint_every=2)  # fmt: skip
    assert same(weights(whole), weights(resumed))
    assert torch.load(resumed, weights_only=True)["extra"] == 1
    log_a = (tmp_path / "a" / loop.LOG_FILE).read_text().splitlines()
    log_b = (tmp_path / "b" / loop.LOG_FILE).read_text().splitlines()
    loss = [line.split()[3] for line in log_a]
    assert [line.split()[3] for line in log_b] == loss  # the resumed epoch's mean loss too
    assert [line.split()[1] for line in log_a] == ["1/3", "2/3", "3/3"]


def test_a_resume_that_draws_again_would_differ(tmp_path: Path, monkeypatch) -> None:
    """The test above can fail: a resumed epoch whose loader draws from torch's generator again
    (as creating a DataLoader iterator does) gives other weights."""
    cpu = torch.device("cpu")
    whole = loop.fit(make_job(tmp_path / "a"), _mk(tmp_path / "a"), device=cpu, progress=False)
    with pytest.raises(Interrupt):
        loop.fit(make_job(tmp_path / "b", fail_at=9), _mk(tmp_path / "b"), device=cpu,
                 progress=False, checkpoint_every=2)  # fmt: skip
    plain = loop._loader
    monkeypatch.setattr(loop, "_loader", lambda job, b, w, _resumed: plain(job, b, w, False))
    resumed = loop.fit(make_job(tmp_path / "b"), tmp_path / "b", device=cpu, progress=False)
    assert not same(weights(whole), weights(resumed))


def test_time_cap_stops_with_a_final_model_and_a_rerun_finishes(tmp_path: Path) -> None:
    cpu = torch.device("cpu")
    whole = loop.fit(make_job(tmp_path / "a"), _mk(tmp_path / "a"), device=cpu, progress=False)
    out = _mk(tmp_path / "b")
    final = loop.fit(make_job(out), out, device=cpu, progress=False, max_seconds=0)
    state = torch.load(out / loop.CHECKPOINT_FILE, weights_only=True)
    assert (state["epoch"], state["step"], state["iteration"]) == (0, 1, 1)
    assert final.is_file() and not same(weights(whole), weights(final))
    assert "time limit 0 s reached at epoch 1 step 1" in (out / loop.LOG_FILE).read_text()
    resumed = loop.fit(make_job(out), out, device=cpu, progress=False)
    assert same(weights(whole), weights(resumed))


def test_checkpoint_of_another_configuration_is_refused(tmp_path: Path) -> None:
    cpu = torch.device("cpu")
    out = _mk(tmp_path / "a")
    loop.fit(make_job(out), out, device=cpu, progress=False, max_seconds=0)
    job = make_job(out)
    job.config = {"name": "other"}
    with pytest.raises(loop.WsssError, match="another configuration"):
        loop.fit(job, out, device=cpu, progress=False)


def test_open_run_checks_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(loop.WsssError, match="3 training images: fewer than one batch of 4"):
        loop.open_run(out, {"a": 1}, device="cpu", workers=0, seed=0,
                      check=loop.batch_check(3, 4))  # fmt: skip
    assert not out.exists()
    loop.open_run(out, {"a": 1}, device="cpu", workers=0, seed=0, check=loop.batch_check(8, 4))
    with pytest.raises(loop.WsssError, match="another configuration"):
        loop.open_run(out, {"a": 2}, device="cpu", workers=0, seed=0)


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
