"""Replay of CUDA graphs for the transformer forwards of the decoding loops.

A batch-1 generation runs ~30 guided transformer forwards of ~300 small kernels each: launched one
by one from Python, the GPU mostly waits for the host. Capturing each forward once per input
signature and replaying it launches the whole forward at once. Replays run the captured kernels,
so their results equal the eager forward's.

Used by :class:`~hftrainer_mogents.pipeline.MoGenTSPipeline` in fast mode on CUDA devices.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch

__all__ = ["CUDAGraphCache"]

logger = logging.getLogger(__name__)


class CUDAGraphCache:
    """Captures ``fn(*tensors)`` as a CUDA graph per ``(key, shapes, dtypes)`` and replays it.

    ``fn`` must be free of host synchronisation and of Python decisions that depend on tensor
    values; everything it reads that changes between calls must be one of ``tensors``, and
    everything else that changes (a layer index, a guidance scale) must be part of ``key``.
    All graphs share one memory pool; the least recently used graph is dropped beyond
    ``max_graphs``. If a capture fails the cache logs why, turns itself off and runs eagerly.

    Examples:
        >>> cache = CUDAGraphCache()  # doctest: +SKIP
        >>> logits = cache(("mask_ts", 4.0), model_fn, ids, cond, padding)  # doctest: +SKIP
    """

    def __init__(self, max_graphs: int = 64, warmup: int = 2, *, enabled: bool = True) -> None:
        self.max_graphs = max_graphs
        self.warmup = warmup
        self.enabled = enabled
        self._graphs: OrderedDict[Hashable, tuple[list[torch.Tensor], Any, torch.Tensor]] = (
            OrderedDict()
        )
        self._pool: Any = None

    def __len__(self) -> int:
        return len(self._graphs)

    def clear(self) -> None:
        """Drop every graph (and with the last of them their memory)."""
        self._graphs.clear()
        self._pool = None

    def __call__(
        self, key: Hashable, fn: Callable[..., torch.Tensor], *tensors: torch.Tensor
    ) -> torch.Tensor:
        """``fn(*tensors)``, from a replayed graph when possible (a fresh tensor each call)."""
        if not self.enabled or not all(t.is_cuda for t in tensors):
            return fn(*tensors)
        full_key = (key, *((tuple(t.shape), t.dtype, t.device) for t in tensors))
        entry = self._graphs.get(full_key)
        if entry is None:
            try:
                entry = self._capture(fn, tensors)
            except RuntimeError as err:  # e.g. an op that synchronises with the host
                logger.warning("CUDA graph capture failed, running eagerly from now on: %s", err)
                self.enabled = False
                self.clear()
                return fn(*tensors)
            self._graphs[full_key] = entry
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(full_key)
        static_inputs, graph, output = entry
        for static, value in zip(static_inputs, tensors):
            static.copy_(value)
        with torch.cuda.device(tensors[0].device):
            graph.replay()
        # the next replay overwrites ``output``: hand out a copy
        return output.clone()

    def _capture(
        self, fn: Callable[..., torch.Tensor], tensors: tuple[torch.Tensor, ...]
    ) -> tuple[list[torch.Tensor], Any, torch.Tensor]:
        device = tensors[0].device
        static_inputs = [t.clone() for t in tensors]
        with torch.cuda.device(device):
            # warm up on a side stream, as capture requires (lazy cuBLAS/attention initialisation)
            stream = torch.cuda.Stream(device=device)
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(stream):
                for _ in range(self.warmup):
                    fn(*static_inputs)
            torch.cuda.current_stream(device).wait_stream(stream)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                output = fn(*static_inputs)
        return static_inputs, graph, output
