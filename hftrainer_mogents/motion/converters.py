"""The representation graph: which function converts ``src`` to ``dst``, and chained conversion.

Edges come from three places, in this order of preference (the design card "reuse host-provided
converters"):

1. the ``hftrainer`` host itself, when it is installed and ships a function for the edge (the zoo
   has ``motion135_to_272`` and ``retarget_hml263_clip``; :data:`HOST_CONVERTERS` names them and
   adapts their calling conventions);
2. other plugins' ``hftrainer_converters`` hooks;
3. this package's own (``zoo/plugin.py`` ``CONVERTERS``: hml263 -> smpl135 -> ms272,
   hml263 -> joints22, joints22 -> smpl135, and out of 272: ms272 -> joints22, ms272 -> smpl135,
   ms272 -> hml263).

``convert(motion, "hml263", "ms272", model_dir=...)`` follows the shortest chain of edges and
hands each function the keyword arguments its signature names; :func:`describe_path` says which
implementation serves each edge. Every edge leaves its output at the target's own frame rate
(``motion.representations``: hml263 20 fps, smpl135 and ms272 30 fps; joints22 keeps its
source's rate).

Representation names go through the registry (``motion.representations.get_spec``), so the zoo's
names and aliases reach the same nodes: ``"motion_135"`` and ``"135"`` are the graph's
``smpl135``, ``"272"`` is ``ms272``, ``"humanml263"`` is ``hml263``. A name the registry does not
know stays as it is (another plugin's representation).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hftrainer_mogents.errors import InvalidInputError, PluginError, UnknownRepresentationError
from hftrainer_mogents.motion.representations import get_spec
from hftrainer_mogents.zoo.specs import ConverterSpec, resolve

__all__ = [
    "HOST_CONVERTERS",
    "Edge",
    "graph_node",
    "available_edges",
    "find_path",
    "describe_path",
    "convert",
]

logger = logging.getLogger(__name__)

OWN_PLUGIN = "mogents"

# registry name -> the node name this graph has used for it since before the registry
_GRAPH_NAMES = {"motion_135": "smpl135"}


def graph_node(name: str) -> str:
    """The graph's node for a representation name or alias (``"motion_135"`` -> ``"smpl135"``,
    ``"272"`` -> ``"ms272"``); a name the registry does not know is returned unchanged."""
    try:
        canonical = get_spec(name).name
    except UnknownRepresentationError:
        return name
    return _GRAPH_NAMES.get(canonical, canonical)


def _host_motion135_to_272(fn: Callable[..., Any]) -> Callable[..., Any]:
    def edge(motion: Any, **_: Any) -> Any:
        import numpy as np

        return np.asarray(fn(np.asarray(motion, dtype=np.float32)), dtype=np.float32)

    return edge


def _host_retarget_hml263(fn: Callable[..., Any]) -> Callable[..., Any]:
    def edge(motion: Any, *, model_dir: Any = None, device: Any = None, **_: Any) -> Any:
        import numpy as np

        module = importlib.import_module(fn.__module__)
        if model_dir is None:
            raise InvalidInputError("the host's hml263 -> smpl135 converter needs model_dir=...")
        dev = device or "cpu"
        out = fn(
            np.asarray(motion, dtype=np.float32),
            smpl_rest=module.load_smpl_rest(model_dir, dev),
            device=dev,
            source_fps=20.0,
            target_fps=30.0,
            floor_align=True,
            refine_iters=80,
            refine_lr=0.02,
            rot6d_convention="row",
        )
        return out["motion_135"]

    return edge


# edge -> (import string of the host's function, adapter to fn(motion, **kw) -> motion)
HOST_CONVERTERS: dict[tuple[str, str], tuple[str, Callable[..., Callable[..., Any]]]] = {
    ("smpl135", "ms272"): (
        "hftrainer.motion.representation.motion272:motion135_to_272",
        _host_motion135_to_272,
    ),
    ("hml263", "smpl135"): (
        "hftrainer.motion.retarget.hml263_smpl:retarget_hml263_clip",
        _host_retarget_hml263,
    ),
}


@dataclass(frozen=True)
class Edge:
    """One usable conversion.

    Attributes:
        src: source representation.
        dst: target representation.
        provider: ``"host"`` or ``"plugin:<name>"``.
        target: import string of the function that does the work (imported on first use).
        adapter: wraps the imported function into ``fn(motion, **kwargs) -> motion`` (host
            functions), or None when it already is one.
    """

    src: str
    dst: str
    provider: str
    target: str
    adapter: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None

    def function(self) -> Callable[..., Any]:
        """The callable ``fn(motion, **kwargs)`` (imports it)."""
        fn = resolve(self.target)
        return self.adapter(fn) if self.adapter is not None else fn

    def __call__(self, motion: Any, **kwargs: Any) -> Any:
        """Call the function with the keyword arguments its signature accepts."""
        fn = self.function()
        return fn(motion, **_accepted(fn, kwargs))


def _accepted(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: pass nothing
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(kwargs)
    names = {p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return {k: v for k, v in kwargs.items() if k in names}


def _host_edges() -> dict[tuple[str, str], Edge]:
    edges: dict[tuple[str, str], Edge] = {}
    for key, (target, adapt) in HOST_CONVERTERS.items():
        module_name = target.partition(":")[0]
        try:
            if importlib.util.find_spec(module_name) is None:
                continue
        except (ImportError, ValueError):  # the parent package is missing
            continue
        edge = Edge(key[0], key[1], "host", target, adapt)
        try:
            edge.function()
        except PluginError as err:
            logger.warning("host converter %s is not usable: %s", target, err)
            continue
        edges[key] = edge
    return edges


def available_edges(
    *, specs: Sequence[ConverterSpec] | None = None, use_host: bool = True
) -> dict[tuple[str, str], Edge]:
    """The implementation chosen for every edge: host first, then other plugins, then ours.

    Args:
        specs: converter specs to consider (default: every installed plugin's, via the loader).
        use_host: also consider the host's own functions.

    Returns:
        ``{(src, dst): Edge}``.
    """
    if specs is None:
        from hftrainer_mogents.zoo.loader import list_converters

        specs = list_converters()
    edges: dict[tuple[str, str], Edge] = {}
    for spec in specs:  # ours: the fallback
        if spec.plugin == OWN_PLUGIN:
            edge = _spec_edge(spec)
            edges.setdefault((edge.src, edge.dst), edge)
    taken: set[tuple[str, str]] = set()
    for spec in sorted(specs, key=lambda s: s.plugin or ""):  # other plugins, first by name
        key = (graph_node(spec.src), graph_node(spec.dst))
        if spec.plugin != OWN_PLUGIN and key not in taken:
            edges[key] = _spec_edge(spec)
            taken.add(key)
    if use_host:
        edges.update(_host_edges())
    return edges


def _spec_edge(spec: ConverterSpec) -> Edge:
    # the zoo's names of a representation and ours meet in one node
    src, dst = graph_node(spec.src), graph_node(spec.dst)
    return Edge(src, dst, f"plugin:{spec.plugin}", spec.fn)


def find_path(src: str, dst: str, edges: dict[tuple[str, str], Edge] | None = None) -> list[Edge]:
    """The shortest chain of edges from ``src`` to ``dst`` (names or aliases, see
    :func:`graph_node`).

    Raises:
        UnknownRepresentationError: a name that no edge and no registry entry knows (the known
            names and aliases are listed).
        InvalidInputError: no chain exists (the known edges are listed).
    """
    edges = available_edges() if edges is None else edges
    src, dst = graph_node(src), graph_node(dst)
    if src == dst:
        return []
    nodes = {name for edge in edges.values() for name in (edge.src, edge.dst)}
    for name in (src, dst):
        if name not in nodes:
            get_spec(name)  # a name neither the graph nor the registry knows: the registry's error
    graph: dict[str, list[Edge]] = {}
    for edge in edges.values():
        graph.setdefault(edge.src, []).append(edge)
    queue = deque([(src, [])])  # type: deque[tuple[str, list[Edge]]]
    seen = {src}
    while queue:
        node, path = queue.popleft()
        for edge in sorted(graph.get(node, []), key=lambda e: e.dst):
            if edge.dst in seen:
                continue
            if edge.dst == dst:
                return [*path, edge]
            seen.add(edge.dst)
            queue.append((edge.dst, [*path, edge]))
    known = ", ".join(f"{a}->{b}" for a, b in sorted(edges)) or "(none)"
    raise InvalidInputError(f"no converter chain from {src!r} to {dst!r}; known edges: {known}")


def describe_path(
    src: str, dst: str, edges: dict[tuple[str, str], Edge] | None = None
) -> list[str]:
    """Which implementation serves each edge of the chain, e.g. ``["hml263->smpl135: plugin:mogents
    (hftrainer_mogents.motion.smpl135:hml263_to_smpl135)", ...]``; ``describe_path("ms272",
    "hml263")`` is ``["ms272->hml263: plugin:mogents
    (hftrainer_mogents.motion.ms272:ms272_to_hml263)"]`` (the edge goes through joints)."""
    return [f"{e.src}->{e.dst}: {e.provider} ({e.target})" for e in find_path(src, dst, edges)]


def convert(
    motion: Any,
    src: str,
    dst: str,
    *,
    edges: dict[tuple[str, str], Edge] | None = None,
    **kwargs: Any,
) -> Any:
    """Convert one motion along the shortest chain of edges.

    Args:
        motion: the motion in representation ``src`` (e.g. a (T, 263) array).
        src: its representation (``"hml263"``, ``"smpl135"``, ``"ms272"``, ``"joints22"``, or
            a name or alias of the registry: ``"motion_135"``, ``"272"``, ...).
        dst: the wanted representation.
        edges: the edge table (default :func:`available_edges`).
        **kwargs: handed to every edge function whose signature names them (e.g. ``model_dir``
            for the SMPL edges, ``config`` for the IK).

    Returns:
        The motion in representation ``dst``.

    Examples:
        >>> m272 = convert(feats263, "hml263", "ms272", model_dir="body_models")  # doctest: +SKIP
        >>> feats = convert(m272, "ms272", "hml263")  # 30 -> 20 fps through joints  # doctest: +SKIP
    """
    for edge in find_path(src, dst, edges):
        motion = edge(motion, **kwargs)
    return motion
