"""Training helpers shared by every trained stage: seeds, the poly schedule, SGD, checkpoints, DDP.

The data order is a pure function of ``(seed, epoch)`` and each sample's augmentation a pure
function of ``(seed, epoch, sample index)``, so a run gives the same weights whatever the number
of processes (:func:`global_batches` then :func:`local_batch`) and whether or not it was resumed.
"""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wsss.engine.distributed import dist_info
from wsss.engine.sharding import shard
from wsss.errors import WsssError
from wsss.io.atomic import atomic_path


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, numpy and torch; optionally ask torch for deterministic algorithms.

    Args:
        seed: Non-negative seed.
        deterministic: Call ``torch.use_deterministic_algorithms(True, warn_only=True)`` (and set
            ``CUBLAS_WORKSPACE_CONFIG`` if unset, which CUDA needs for it).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def derived_seed(*entropy: int) -> int:
    """A 64-bit seed derived from non-negative integers with ``numpy.random.SeedSequence``."""
    if any(int(e) < 0 for e in entropy):
        raise ValueError(f"seed entropy must be non-negative, got {entropy}")
    state = np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, np.uint64)
    return int(state[0])


# -- data order ------------------------------------------------------------------------------------
def global_batches(num_samples: int, batch_size: int, *, seed: int, epoch: int) -> list[list[int]]:
    """The global batches of one epoch: a seeded permutation cut into full batches.

    The last incomplete batch is dropped, so every step sees exactly ``batch_size`` samples.

    Args:
        num_samples: Dataset length.
        batch_size: Global batch size (over all processes).
        seed: Run seed.
        epoch: Epoch index (0-based).

    Returns:
        ``num_samples // batch_size`` lists of dataset indices.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    rng = np.random.Generator(np.random.PCG64(derived_seed(seed, epoch, 0)))
    order = rng.permutation(num_samples).tolist()
    steps = num_samples // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(steps)]


def local_batch(batch: list[int], rank: int, world: int) -> list[int]:
    """This process's contiguous share of a global batch (sizes differ by at most one)."""
    return shard(batch, rank, world)


def epoch_keys(
    num_samples: int, batch_size: int, *, seed: int, epoch: int
) -> list[list[tuple[int, int]]]:
    """This process's ``(epoch, index)`` keys of each global batch of ``epoch``."""
    info = dist_info()
    batches = global_batches(num_samples, batch_size, seed=seed, epoch=epoch)
    return [[(epoch, i) for i in local_batch(b, info.rank, info.world)] for b in batches]


def local_loss_weight(local_size: int, global_size: int, world: int) -> float:
    """Factor turning a local mean loss into this rank's share of the global mean loss.

    DDP averages gradients over ``world`` processes; with ``local_mean * local_size * world /
    global_size`` the average equals the gradient of the mean over the whole global batch, also
    when the global batch does not split evenly.
    """
    return local_size * world / global_size


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of sample ``index``'s augmentation in ``epoch`` (independent of the rank)."""
    return derived_seed(seed, epoch, 1, index)


@contextmanager
def sample_rng(seed: int, epoch: int, index: int) -> Iterator[None]:
    """Torch's CPU generator seeded with :func:`sample_seed` inside, its state restored after.

    The CPU generator only: ``torch.manual_seed`` would also reseed every accelerator's generators
    (which ``fork_rng(devices=[])`` does not restore) and, in a CUDA build, format a stack trace
    on each call.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(sample_seed(seed, epoch, index))
        yield


# -- optimisation ------------------------------------------------------------------------------------
def poly_factor(iteration: int, total: int, power: float = 0.9) -> float:
    """``(1 - iteration / total) ** power``, 0 from ``total`` on (IRNet's PolyOptimizer)."""
    if total < 1:
        raise ValueError(f"total iterations must be positive, got {total}")
    return max(0.0, 1.0 - iteration / total) ** power


def trainable_groups(groups: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Parameter groups (each needing ``params`` and ``lr``) with only their trainable parameters
    and a ``base_lr`` for the poly schedule; groups left empty are dropped.

    Raises:
        ValueError: no trainable parameter at all.
    """
    param_groups = []
    for group in groups:
        params = [p for p in group["params"] if p.requires_grad]
        if params:
            param_groups.append({**group, "params": params, "base_lr": float(group["lr"])})
    if not param_groups:
        raise ValueError("no trainable parameters")
    return param_groups


def make_sgd(
    groups: Iterable[Mapping[str, Any]], *, momentum: float = 0.9, weight_decay: float = 0.0
) -> torch.optim.SGD:
    """SGD over parameter groups, each needing ``params`` and ``lr``; stores ``base_lr`` in each.

    Weight decay goes to SGD's ``weight_decay`` argument (IRNet's PolyOptimizer passed it as the
    momentum by mistake; this does not).
    """
    param_groups = trainable_groups(groups)
    return torch.optim.SGD(param_groups, lr=param_groups[0]["lr"], momentum=momentum,
                           weight_decay=weight_decay)  # fmt: skip


def set_poly_lr(
    optimizer: torch.optim.Optimizer, iteration: int, total: int, power: float = 0.9
) -> float:
    """Set every group's lr to ``base_lr * poly_factor(iteration, total, power)``; returns it for
    the first group."""
    factor = poly_factor(iteration, total, power)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return float(optimizer.param_groups[0]["lr"])


def seeded_poly_plan(
    num_samples: int, config: Any, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """The ``batches`` and ``set_lr`` of a :class:`~wsss.engine.loop.Training` for the usual recipe:
    seeded global batches of ``config.batch_size`` keys per epoch (:func:`epoch_keys`) and the
    poly schedule over ``config.epochs`` epochs (``config.poly_power``, ``config.seed``)."""
    total = num_samples // config.batch_size * config.epochs

    def batches(epoch: int) -> list[list[tuple[int, int]]]:
        return epoch_keys(num_samples, config.batch_size, seed=config.seed, epoch=epoch)

    def set_lr(_epoch: int, iteration: int) -> float:
        return set_poly_lr(optimizer, iteration, total, config.poly_power)

    return {"batches": batches, "set_lr": set_lr}


# -- checkpoints -------------------------------------------------------------------------------------
def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` onto it."""
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only).

    Raises:
        WsssError: missing or unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise WsssError("missing checkpoint", path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise WsssError(f"unreadable checkpoint ({err})", path) from None
    if not isinstance(state, dict):
        raise WsssError("a checkpoint must hold a dict", path)
    return state


def rng_state() -> dict[str, Any]:
    """torch's CPU (and CUDA, if initialised) generator states."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# -- devices and DDP ---------------------------------------------------------------------------------
def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:i``; under torchrun with CUDA, each process takes its local GPU.

    Raises:
        WsssError: an unknown device, or CUDA requested where there is none.
    """
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise WsssError(f"unknown device {device!r} (use cpu, cuda or cuda:<i>)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise WsssError(f"device {device!r} requested but CUDA is not available")
        info = dist_info()
        if info.world > 1 or dev.index is None:
            dev = torch.device("cuda", info.local_rank if info.world > 1 else 0)
    elif dev.type != "cpu":
        raise WsssError(f"unsupported device {device!r} (use cpu, cuda or cuda:<i>)")
    return dev


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap in ``DistributedDataParallel`` when running in several processes, else return as is.

    DDP broadcasts rank 0's parameters and buffers at construction and averages gradients.
    """
    if dist_info().world <= 1 or not torch.distributed.is_initialized():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or the module itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def train_seconds(run: str | Path) -> float:
    """Sum of the epoch times (``seconds S``) in a run's ``train.log``, as every trainer writes it
    (a resumed run counts every epoch once)."""
    log = Path(run) / "train.log"
    if not log.is_file():
        return 0.0
    words = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    return sum(float(w[w.index("seconds") + 1]) for w in words if "seconds" in w)
