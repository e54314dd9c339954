"""Distributed helpers, sharding and resume: the same code runs in one process or under torchrun."""

from wsss.engine.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    dist_info,
    init_distributed,
    is_main_process,
    shutdown_distributed,
)
from wsss.engine.sharding import pending, shard

__all__ = [
    "DistInfo",
    "all_reduce_sum",
    "barrier",
    "dist_info",
    "init_distributed",
    "is_main_process",
    "pending",
    "shard",
    "shutdown_distributed",
]
