"""The training loop every trained stage drives: epochs, checkpoints, resume, DDP, the log.

A stage (``cam``, ``affinity``, ``seg``, ``group``) brings what is its own — the model, the
optimiser, the samples and their global batches, the loss of one batch, the learning-rate
schedule — and :func:`fit` does the rest, the same way for all of them:

* each epoch's batches come from the stage (a pure function of ``(seed, epoch)``), each process
  takes its share; a :class:`StepOutput` per batch is backpropagated, the optimiser steps;
* ``checkpoint.pt`` (model, optimiser, epoch, iteration, RNG state, config) is written
  atomically after every epoch and, with ``checkpoint_every``, every that many steps inside one;
  a rerun resumes from it and gives the same weights as an uninterrupted run;
* ``train.log`` gets one line per epoch (``epoch E/N loss L lr R seconds S``), a progress bar
  runs on rank 0, and ``final.pt`` is written at the end (or when ``max_seconds`` is reached).

The files of a run directory (rank 0 writes them):

==================  ==========================================================================
``config.json``     ``{"config": <the stage's resolved configuration>, "runtime": {...}}``
``checkpoint.pt``   the resumable state (see above)
``final.pt``        ``{"model": weights on the CPU, "config": ..., <the stage's extras>}``
``train.log``       one line per epoch
==================  ==========================================================================

:func:`open_run` does the common start of a stage's ``train`` (process group, device, the run
folder's configuration check, ``config.json``, seeding); :func:`rank_zero_first` builds a model
with ImageNet weights on rank 0 before the others, so that one process downloads them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import torch
from torch import nn

from wsss.engine.distributed import (
    all_reduce_sum,
    barrier,
    dist_info,
    init_distributed,
    is_main_process,
)
from wsss.engine.progress import track
from wsss.engine.training import (
    load_checkpoint,
    local_loss_weight,
    resolve_device,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    unwrap,
    wrap_ddp,
)
from wsss.errors import WsssError
from wsss.io.atomic import atomic_write_text

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
FINAL_FILE = "final.pt"
LOG_FILE = "train.log"

M = TypeVar("M", bound=nn.Module)


class StepOutput(NamedTuple):
    """What a stage's loss function returns for one local batch.

    Attributes:
        loss: The scalar to backpropagate (already scaled so that DDP's gradient average is the
            gradient of the global batch's loss).
        total: Sum of the per-item losses of this batch (for the log; detached is fine).
        count: Number of items in ``total`` (images, pixels, ...).
    """

    loss: torch.Tensor
    total: torch.Tensor
    count: torch.Tensor | int


def mean_loss(per_item: torch.Tensor, global_items: int) -> StepOutput:
    """The :class:`StepOutput` of a loss averaged over the items of the global batch.

    DDP averages gradients over processes, so the local mean is scaled by its share
    (:func:`~wsss.engine.training.local_loss_weight`); ``global_items`` counts the items of the
    global batch in ``per_item``'s units (all its elements).
    """
    weight = local_loss_weight(per_item.numel(), global_items, dist_info().world)
    return StepOutput(per_item.mean() * weight, per_item.detach().sum(), per_item.numel())


def final_path(path: str | Path) -> Path:
    """A run directory's ``final.pt``, or the file itself."""
    path = Path(path)
    return path / FINAL_FILE if path.is_dir() else path


#: ``step(model, batch) -> StepOutput``: the loss of one local batch (``model`` may be DDP-wrapped).
StepFn = Callable[[nn.Module, Any], StepOutput]


# -- the start of a stage's train() ----------------------------------------------------------------
def check_run_config(out: Path, config: Mapping[str, Any]) -> None:
    """Refuse a run folder whose ``config.json`` holds another configuration.

    Raises:
        WsssError: unreadable ``config.json``, or another configuration.
    """
    path = out / CONFIG_FILE
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError) as err:
        raise WsssError(f"unreadable run configuration ({err})", path) from None
    if previous != dict(config):
        raise WsssError(
            "the run directory holds a training run with another configuration",
            path,
            hint="choose another --out, or delete the folder to start over",
        )


def open_run(
    out: Path,
    config: Mapping[str, Any],
    *,
    device: str,
    workers: int,
    seed: int,
    check: Callable[[int], None] | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> torch.device:
    """Join the process group, pick the device, check and write ``config.json``, seed everything.

    Args:
        out: The run directory (created on rank 0).
        config: The stage's resolved configuration (``to_dict()``): the run's identity.
        device: ``cpu``, ``cuda`` or ``cuda:<i>``.
        workers: DataLoader worker processes (recorded).
        seed: Seed of Python, numpy and torch.
        check: Called with the world size before anything is written; raises on bad input
            (too few images for a batch, more processes than batch items, ...).
        runtime: Further runtime options recorded beside the configuration.

    Returns:
        This process's device.
    """
    info = init_distributed(device)
    dev = resolve_device(device)
    check_run_config(out, config)
    if check is not None:
        check(info.world)
    if is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        record = {"device": device, "workers": workers, "world_size": info.world}
        record.update(runtime or {})
        text = json.dumps({"config": dict(config), "runtime": record}, indent=2) + "\n"
        atomic_write_text(out / CONFIG_FILE, text)
    seed_everything(seed, deterministic=False)
    return dev


def batch_check(items: int, batch_size: int, unit: str = "images") -> Callable[[int], None]:
    """The usual :func:`open_run` ``check``: at least one full batch, at most one process per
    batch item."""

    def check(world: int) -> None:
        if items // batch_size == 0:
            raise WsssError(f"{items} training {unit}: fewer than one batch of {batch_size}")
        if world > batch_size:
            raise WsssError(f"{world} processes for batches of {batch_size} {unit}")

    return check


def rank_zero_first(build: Callable[[], M], *, download: bool) -> M:
    """``build()`` on rank 0 first when it ``download``s weights (the others then read the cache)."""
    first = is_main_process()
    if download and not first:
        barrier()
    module = build()
    if download and first:
        barrier()
    return module


# -- the loop --------------------------------------------------------------------------------------
@dataclass
class Training:
    """One stage's training: everything :func:`fit` needs besides the run folder.

    Attributes:
        module: The model (unwrapped, on its device, in its initial or ``init`` state).
        optimizer: Its optimiser; groups carry ``base_lr`` for the schedules.
        samples: A dataset indexed by the keys the batches hold.
        batches: ``epoch -> this process's batches`` (lists of keys), one per global batch.
        step: The loss of one local batch (:data:`StepFn`).
        set_lr: ``(epoch, iteration) -> lr``: sets the optimiser's rates before each step and
            returns the first group's (the log's ``lr``).
        epochs: Number of epochs.
        config: The stage's configuration (``to_dict()``), stored in every checkpoint.
        final: Extra entries of ``final.pt`` beside ``model`` and ``config``.
        extra: Extra entries of every checkpoint (e.g. ``model_kind``).
        name: Prefix of the progress bar's description (e.g. ``irn``).
        stage: What trains, for error messages (e.g. ``train-cam``).
        max_grad_norm: Rescale the gradients (of all parameters together, after DDP's average,
            so every process rescales alike) to at most this L2 norm before each step; None:
            never.
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    samples: torch.utils.data.Dataset
    batches: Callable[[int], Sequence[Sequence[Any]]]
    step: StepFn
    set_lr: Callable[[int, int], float]
    epochs: int
    config: Mapping[str, Any]
    final: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    stage: str = "training"
    max_grad_norm: float | None = None


@dataclass
class _State:
    epoch: int = 0
    iteration: int = 0
    step: int = 0  # batches finished inside ``epoch`` (mid-epoch checkpoints)
    sums: list[float] = field(default_factory=lambda: [0.0, 0.0])
    resumed_mid_epoch: bool = False


def _resume(out: Path, job: Training) -> _State:
    path = out / CHECKPOINT_FILE
    if not path.is_file():
        return _State()
    state = load_checkpoint(path)
    if state.get("config") != dict(job.config):
        raise WsssError("checkpoint was written by another configuration", path)
    job.module.load_state_dict(state["model"])
    job.optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    step = int(state.get("step", 0))
    # mid-epoch sums are the all-process totals; rank 0 carries them on
    saved = state.get("sums") if is_main_process() else None
    sums = [float(v) for v in saved] if saved is not None else [0.0, 0.0]
    return _State(int(state["epoch"]), int(state["iteration"]), step, sums, step > 0)


def _check_finite_weights(job: Training, path: Path) -> None:
    """Refuse to write ``path`` from a model with a non-finite weight or buffer."""
    bad = [k for k, v in job.module.state_dict().items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]  # fmt: skip
    if bad:
        raise WsssError(f"{job.stage}: {len(bad)} non-finite weights (first: {bad[0]}); not written",
                        path)  # fmt: skip


def _check_step(job: Training, state: _State, loss: torch.Tensor, lr: float, out: Path) -> None:
    """Stop at the first non-finite loss or gradient (before the optimiser applies it).

    Raises:
        WsssError: naming the stage, the step, the loss, the gradient norm and the learning rate.
    """
    grads = [p.grad for p in job.module.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
    value = loss.detach().double()
    bad = torch.stack([~torch.isfinite(value), ~torch.isfinite(norm.double())]).double()
    if bool(all_reduce_sum(bad).sum() == 0):
        return
    raise WsssError(
        f"{job.stage}: training diverged at step {state.iteration + 1} (epoch {state.epoch + 1}): "
        f"loss {float(value):.4g}, gradient norm {float(norm):.4g}, lr {lr:.4g}; the step was not "
        f"applied, no final model is written, the last checkpoint (if any) is kept",
        out,
        hint="lower the learning rate and rerun: training resumes from the checkpoint",
    )


def _save_checkpoint(out: Path, job: Training, state: _State) -> None:
    _check_finite_weights(job, out / CHECKPOINT_FILE)
    content = {
        "model": job.module.state_dict(), "optimizer": job.optimizer.state_dict(),
        "epoch": state.epoch, "iteration": state.iteration, "rng": rng_state(),
        "config": dict(job.config), **job.extra,
    }  # fmt: skip
    if state.step:
        content.update(step=state.step, sums=list(state.sums))
    save_checkpoint(out / CHECKPOINT_FILE, content)


def _loader(job: Training, batches: Sequence[Sequence[Any]], workers: int, resumed: bool) -> Any:
    """The iterator over ``batches``. Creating one draws from torch's generator; a run resumed
    inside an epoch restored the state after that draw, so it must not draw again."""
    loader = torch.utils.data.DataLoader(job.samples, batch_sampler=batches, num_workers=workers)
    if not resumed:
        return iter(loader)
    with torch.random.fork_rng(devices=[]):
        return iter(loader)


def _time_is_up(start: float, max_seconds: float | None, device: torch.device) -> bool:
    """Whether rank 0 has run out of time (all processes agree)."""
    if max_seconds is None:
        return False
    flag = torch.tensor(
        float(is_main_process() and time.perf_counter() - start >= max_seconds), device=device
    )
    return bool(all_reduce_sum(flag) > 0)


def _log(out: Path, line: str, report: Callable[[str], None] | None) -> None:
    with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    if report is not None:
        report(line)


def _run_epoch(
    model: nn.Module, job: Training, state: _State, out: Path, *, device: torch.device,
    workers: int, progress: bool, checkpoint_every: int | None, deadline: Callable[[], bool],
) -> tuple[float, float, bool]:  # fmt: skip
    """Run the rest of epoch ``state.epoch``; returns its mean loss, the last lr and whether the
    time ran out before the epoch's end."""
    batches = job.batches(state.epoch)
    todo = batches[state.step :]
    iterator = _loader(job, todo, workers, state.resumed_mid_epoch)
    state.resumed_mid_epoch = False
    sums = torch.tensor(state.sums, dtype=torch.float64, device=device)
    lr = 0.0
    model.train()
    prefix = f"{job.name} " if job.name else ""
    description = f"{prefix}epoch {state.epoch + 1}/{job.epochs}"
    for batch in track(iterator, description=description, total=len(todo), enabled=progress):
        lr = job.set_lr(state.epoch, state.iteration)
        result = job.step(model, batch)
        job.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        _check_step(job, state, result.loss, lr, out)
        if job.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(job.module.parameters(), job.max_grad_norm)
        job.optimizer.step()
        state.iteration += 1
        state.step += 1
        count = torch.as_tensor(result.count, device=device)
        sums += torch.stack([result.total.detach().double(), count.double()])
        stop = deadline()
        periodic = checkpoint_every is not None and state.step % checkpoint_every == 0
        if (stop or periodic) and state.step < len(batches):
            state.sums = all_reduce_sum(sums.clone()).tolist()
            if is_main_process():
                _save_checkpoint(out, job, state)
            barrier()
        if stop and state.step < len(batches):
            return float("nan"), lr, True
    all_reduce_sum(sums)
    return float(sums[0] / sums[1].clamp(min=1)), lr, False


def fit(
    job: Training,
    out: Path,
    *,
    device: torch.device,
    workers: int = 0,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
    checkpoint_every: int | None = None,
    max_seconds: float | None = None,
) -> Path:
    """Train ``job`` into the run directory ``out`` (resuming from its checkpoint).

    Call it in every process of a ``torchrun`` job or in one process; rank 0 writes the files.

    Args:
        job: The stage's model, optimiser, data, loss and schedule.
        out: The run directory (made by :func:`open_run`).
        device: This process's device.
        workers: DataLoader worker processes.
        progress: Progress bar per epoch (rank 0).
        report: Called with each epoch's log line (rank 0).
        checkpoint_every: Also write ``checkpoint.pt`` every this many steps inside an epoch.
        max_seconds: Stop after the first step that ends this many seconds after the start
            (measured on rank 0), with a checkpoint and ``final.pt``; a rerun continues. The
            learning-rate schedule stays the one of ``job.epochs``.

    Returns:
        The path of ``final.pt``.
    """
    if checkpoint_every is not None and checkpoint_every < 1:
        raise WsssError(f"checkpoint_every must be >= 1 step, got {checkpoint_every}")
    state = _resume(out, job)
    model = wrap_ddp(job.module, device)
    start = time.perf_counter()

    def deadline() -> bool:
        return _time_is_up(start, max_seconds, device)

    ran = 0
    while state.epoch < job.epochs:
        epoch_start = time.perf_counter()
        loss, lr, stopped = _run_epoch(
            model, job, state, out, device=device, workers=workers, progress=progress,
            checkpoint_every=checkpoint_every, deadline=deadline,
        )  # fmt: skip
        ran += 1
        if stopped:
            if is_main_process():
                _log(out, f"time limit {max_seconds:g} s reached at epoch {state.epoch + 1} "
                          f"step {state.step} (iteration {state.iteration})", report)  # fmt: skip
            break
        state.epoch, state.step, state.sums = state.epoch + 1, 0, [0.0, 0.0]
        seconds = time.perf_counter() - epoch_start
        if is_main_process():
            _save_checkpoint(out, job, state)
            _log(out, f"epoch {state.epoch}/{job.epochs} loss {loss:.6f} lr {lr:.6g} "
                      f"seconds {seconds:.1f}", report)  # fmt: skip
        barrier()
        if deadline():
            break
    return _write_final(out, job, ran)


def _write_final(out: Path, job: Training, ran: int) -> Path:
    """``final.pt`` (unless a finished run was only re-opened)."""
    final = out / FINAL_FILE
    if is_main_process() and not (final.is_file() and ran == 0):
        _check_finite_weights(job, final)
        weights = {k: v.cpu() for k, v in unwrap(job.module).state_dict().items()}
        save_checkpoint(final, {"model": weights, "config": dict(job.config), **job.final})
    barrier()
    return final
