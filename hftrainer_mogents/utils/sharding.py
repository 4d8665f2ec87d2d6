"""Splitting batch jobs across processes: ``--num-shards/--shard-index`` or torchrun's env."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TypeVar

from hftrainer_mogents.errors import InvalidInputError

__all__ = ["resolve_shard", "select_shard", "shard_summary_name"]

T = TypeVar("T")


def resolve_shard(
    num_shards: int | None = None,
    shard_index: int | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """The ``(num_shards, shard_index)`` of this process.

    Explicit values win; otherwise torchrun's ``WORLD_SIZE``/``RANK`` (or ``LOCAL_WORLD_SIZE`` /
    ``LOCAL_RANK``) are used; otherwise ``(1, 0)``.

    Raises:
        InvalidInputError: ``num_shards < 1`` or ``shard_index`` outside ``[0, num_shards)``.
    """
    env = os.environ if env is None else env
    if num_shards is None:
        num_shards = int(env.get("WORLD_SIZE", env.get("LOCAL_WORLD_SIZE", 1)))
        if shard_index is None:
            shard_index = int(env.get("RANK", env.get("LOCAL_RANK", 0)))
    if shard_index is None:
        shard_index = 0
    if num_shards < 1:
        raise InvalidInputError(f"num_shards must be >= 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise InvalidInputError(
            f"shard_index must be in [0, {num_shards}) for num_shards={num_shards}, got {shard_index}"
        )
    return num_shards, shard_index


def select_shard(items: Sequence[T], num_shards: int, shard_index: int) -> list[T]:
    """Items ``i`` with ``i % num_shards == shard_index`` (the zoo scripts' rule), in order."""
    return [item for i, item in enumerate(items) if i % num_shards == shard_index]


def shard_summary_name(stem: str, num_shards: int, shard_index: int) -> str:
    """The summary file of a batch job: ``<stem>.json``, or ``<stem>_s{ii}_of_{nn}.json`` for one
    shard of several (so shards writing into one folder never overwrite each other's)."""
    if num_shards > 1:
        return f"{stem}_s{shard_index:02d}_of_{num_shards:02d}.json"
    return f"{stem}.json"
