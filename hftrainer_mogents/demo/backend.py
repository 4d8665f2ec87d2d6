"""The web demo's requests as plain functions, without Gradio: :class:`DemoBackend` holds the
pipeline (loaded once) and answers the three tabs (:meth:`~DemoBackend.generate`,
:meth:`~DemoBackend.edit`, :meth:`~DemoBackend.sequence`). Each request reads the page's values
(seconds, span text, ``prompt : seconds`` rows), runs the package's own checks on them
(:class:`~hftrainer_mogents.generation_config.GenerationConfig`,
:func:`~hftrainer_mogents.pipeline.inputs.normalize_length`,
:func:`~hftrainer_mogents.pipeline.editing.check_keep`,
:func:`~hftrainer_mogents.pipeline.long_motion.check_sequence`) before any compute, and writes
one folder per request with :func:`~hftrainer_mogents.jobs.generate.generate_run` (the writers of
:mod:`hftrainer_mogents.exports` and ``run.json``), exactly as ``mogents generate`` / ``edit`` /
``generate --sequence`` would. A bad value raises
:class:`~hftrainer_mogents.errors.InvalidInputError` whose message names the page's field; the
page shows it (:mod:`hftrainer_mogents.demo.app`)."""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hftrainer_mogents.config import FPS, MAX_MOTION_LENGTH, MIN_MOTION_LENGTH, UNIT_LENGTH
from hftrainer_mogents.errors import InvalidInputError
from hftrainer_mogents.generation_config import GENERATION_FIELDS, GenerationConfig
from hftrainer_mogents.jobs.generate import (
    RUN_FILE,
    ModelSource,
    RunItem,
    generate_run,
    sequence_producer,
    slugify,
)

if TYPE_CHECKING:
    from hftrainer_mogents.motion.smpl135 import SMPLModel
    from hftrainer_mogents.pipeline import MoGenTSPipeline

__all__ = ["DemoBackend", "DemoResult", "Progress", "parse_spans", "parse_sequence_rows"]

# (fraction done, what is happening) -> None; the page's progress bar
Progress = Callable[[float, str], None]

# the formats every request writes (smpl too when the SMPL model is given)
DEMO_FORMATS = ("npy", "joints", "mp4", "bvh", "glb")
SEED_LIMIT = 2**31  # what the page's "random" draws; any seed in [0, 2**63) is accepted


@dataclass
class DemoResult:
    """One answered request: its folder and the files the page shows and offers.

    Attributes:
        folder: the request's own output folder.
        files: format (``npy``, ``joints``, ``mp4``, ``bvh``, ``glb``, ``smpl``, ``run``) ->
            the file.
        viewer: the ``.glb`` the 3D viewer shows (the SMPL body with the SMPL model, else the
            skeleton with a stick-figure mesh, which a browser viewer can draw).
        timeline: a picture of the motion's joint speed over time, with the regenerated spans
            (edit) or the segments (sequence) marked.
        frames: the motion's frames (20 fps).
        seed: the seed the motion was made with.
        summary: one line for the page (frames, seconds, seed, what was regenerated).
        marked: the frame ranges ``[start, end)`` the timeline marks.
        warnings: what the package warned about while making it (lengths floored, spans
            snapped to token steps, a BVH skeleton that misses the joints, ...).
    """

    folder: Path
    files: dict[str, Path]
    viewer: Path
    timeline: Path
    frames: int
    seed: int
    summary: str
    marked: list[list[int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Loaded(ModelSource):
    """A :class:`ModelSource` whose pipeline is already loaded (the demo loads it once)."""

    pipe: Any = field(default=None, compare=False, repr=False)

    def load(self) -> MoGenTSPipeline:
        return self.pipe


class DemoBackend:
    """The demo's model and its requests (no Gradio here: the page calls these methods).

    Args:
        pipe: the loaded pipeline.
        model: its id or folder (recorded in ``run.json``).
        dtype: its dtype name (recorded in ``run.json``).
        smpl_model: the SMPL model: the ``.glb`` then holds the SMPL body and an SMPL ``.npz``
            is written (not for sequences, which ``generate --sequence`` writes without it).
        out_root: where the request folders go (a new temporary folder is made in it; default:
            in the system's temporary folder).
        formats: what each request writes (``npy`` and ``joints`` always; the page shows the
            ``mp4`` and the ``glb``).
    """

    def __init__(
        self,
        pipe: MoGenTSPipeline,
        *,
        model: str,
        dtype: str = "float32",
        smpl_model: SMPLModel | None = None,
        out_root: str | Path | None = None,
        formats: Sequence[str] = DEMO_FORMATS,
    ) -> None:
        unknown = set(formats) - set(DEMO_FORMATS)
        if unknown:
            raise InvalidInputError(f"formats {sorted(unknown)}: choose from {DEMO_FORMATS}")
        self.formats = tuple(dict.fromkeys(("npy", "joints", *formats)))
        self.pipe = pipe
        self.smpl_model = smpl_model
        self.source = _Loaded(model, dtype=dtype, device=str(pipe.device), pipe=pipe)
        root = Path(out_root) if out_root is not None else None
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.out_root = Path(tempfile.mkdtemp(prefix="mogents_demo_", dir=root))
        self._count = itertools.count()
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model: str,
        *,
        device: str | None = None,
        dtype: str = "float32",
        model_dir: str | None = None,
        out_root: str | Path | None = None,
        local_files_only: bool = False,
    ) -> DemoBackend:
        """Load the pipeline (and the SMPL model of ``model_dir``) once.

        Raises:
            MoGenTSError: the model or the SMPL model cannot be loaded (the typed error says why).
        """
        from hftrainer_mogents.exports import load_export_model

        smpl_model = load_export_model(["smpl", "glb"], model_dir) if model_dir else None
        pipe = ModelSource(model, None, local_files_only, device, dtype).load()
        pipe.set_progress_bar_config(desc="generating", unit="batch")
        return cls(pipe, model=model, dtype=dtype, smpl_model=smpl_model, out_root=out_root)

    # ------------------------------------------------------------------ requests

    def generate(
        self,
        prompt: str,
        seconds: float | None,
        *,
        estimate: bool = False,
        seed: float | int | str | None = None,
        settings: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> DemoResult:
        """A motion from ``prompt``, ``seconds`` long (or the model's estimate).

        Args:
            prompt: the text.
            seconds: the length (20 fps; floored to whole 0.2 s steps within 2-9.8 s); ignored
                with ``estimate``.
            estimate: let the model's length estimator choose.
            seed: an integer in [0, 2**63); None or empty: a random one (shown in the result).
            settings: :class:`GenerationConfig` fields (the "advanced" fold).
            progress: the page's progress bar.

        Returns:
            The request's :class:`DemoResult` (its folder, files and summary).

        Raises:
            InvalidInputError: a bad prompt, length, seed or setting (its message names it).
        """
        report = progress or _no_progress
        text = _check_prompt(prompt)
        frames = None if estimate else _frames_of(seconds, "Length")
        config = _config(settings)
        used = _seed(seed)
        report(0.05, "generating")

        def produce(pipe: Any, todo: list[RunItem]) -> tuple[list[Any], dict[str, Any]]:
            result = pipe(
                [text], None if frames is None else [frames], generation_config=config, seed=used
            )
            return result.motions, {"settings": result.settings}

        stem = slugify(text)
        return self._run(
            "generate",
            stem,
            text,
            produce,
            config,
            used,
            report,
            note=_length_note(seconds, frames, estimate),
        )

    def edit(
        self,
        motion: str | Path | np.ndarray | None,
        prompt: str,
        spans: str,
        *,
        regenerate: bool = True,
        seed: float | int | str | None = None,
        settings: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> DemoResult:
        """Regenerate part of ``motion`` from ``prompt``, keeping the rest.

        Args:
            motion: a ``(T, 263)`` motion or its ``.npy`` file (the last result or an upload).
            prompt: the text of the regenerated frames.
            spans: seconds, e.g. ``"2-4"`` or ``"0-1.5, 6-8"``: the spans to regenerate
                (``regenerate``) or to keep.
            regenerate: whether ``spans`` are the frames to regenerate (else the ones to keep).
            seed: as in :meth:`generate`.
            settings: as in :meth:`generate`.
            progress: as in :meth:`generate`.

        Returns:
            The request's :class:`DemoResult` (its folder, files and summary).

        Raises:
            InvalidInputError: no motion, a file that is not a (T, 263) motion of 40-196 frames
                (a multiple of 4), bad spans, prompt, seed or setting.
        """
        from hftrainer_mogents.pipeline.editing import check_keep

        report = progress or _no_progress
        source = _read_motion(motion)
        text = _check_prompt(prompt)
        frames = len(source)
        ranges = parse_spans(spans, frames)
        keep = _complement(ranges, frames) if regenerate else ranges
        if not keep:
            raise InvalidInputError(
                "Spans: they cover the whole motion, so nothing would be kept; regenerate part "
                "of it (or generate a new motion in the Generate tab)"
            )
        mask = _labelled("Spans", lambda: check_keep(keep, frames))
        config = _config(settings)
        used = _seed(seed)
        new = _ranges_of(~mask)
        report(0.05, "editing")

        def produce(pipe: Any, todo: list[RunItem]) -> tuple[list[Any], dict[str, Any]]:
            result = pipe.edit(source, text, keep, seed=used, generation_config=config)
            edit = {
                "text": text,
                # the spans used: snapped inward to whole 4-frame token steps
                "keep": result.settings["edit"]["keep"][0],
                "keep_requested": [list(r) for r in keep],
                "regenerated": _ranges_of(~mask),
                "decoder_reach": result.settings["edit"]["decoder_reach"],
            }
            return result.motions, {"settings": result.settings, "edit": edit}

        marked = ", ".join(f"{a / FPS:g}-{b / FPS:g} s" for a, b in new)
        return self._run(
            "edit",
            f"edit_{slugify(text)}",
            f"{text} [regenerated {marked}]",
            produce,
            config,
            used,
            report,
            marked=new,
            note=f"regenerated {marked} (whole 0.2 s token steps)",
        )

    def sequence(
        self,
        rows: str,
        *,
        transition_seconds: float = 2.0,
        seed: float | int | str | None = None,
        settings: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> DemoResult:
        """One long motion from ``prompt : seconds`` rows, joined in order by editing
        (:meth:`~hftrainer_mogents.pipeline.MoGenTSPipeline.generate_long`).

        Args:
            rows: one ``prompt : seconds`` per line (blank lines skipped).
            transition_seconds: how much of the previous segment each seam keeps.
            seed: as in :meth:`generate`.
            settings: as in :meth:`generate`.
            progress: as in :meth:`generate`.

        Returns:
            The request's :class:`DemoResult` (its folder, files and summary).

        Raises:
            InvalidInputError: a malformed row, a segment under 2 s, a bad transition, seed or
                setting.
        """
        from hftrainer_mogents.pipeline.long_motion import check_sequence

        report = progress or _no_progress
        texts, lengths = parse_sequence_rows(rows)
        transition = _transition_frames(transition_seconds)
        _, frames, _ = _labelled("Sequence", lambda: check_sequence(texts, lengths, transition))
        config = _config(settings)
        used = _seed(seed)
        bounds = np.cumsum([0, *frames])
        marked = [[int(a), int(b)] for a, b in zip(bounds[:-1], bounds[1:])]
        report(0.05, "generating the segments")

        produce = sequence_producer(
            texts, lengths, transition=transition, seed=used, generation_config=config
        )
        return self._run(
            "sequence",
            "sequence",
            " / ".join(texts),
            produce,
            config,
            used,
            report,
            marked=marked,
            smpl=False,
            note=f"{len(texts)} segment(s)",
        )

    # ------------------------------------------------------------------ one run

    def _run(
        self,
        kind: str,
        stem: str,
        title: str,
        produce: Callable[[Any, list[RunItem]], tuple[list[Any], dict[str, Any]]],
        config: GenerationConfig,
        seed: int,
        report: Progress,
        *,
        marked: list[list[int]] | None = None,
        smpl: bool = True,
        note: str = "",
    ) -> DemoResult:
        from hftrainer_mogents.exports import FORMATS

        smpl_model = self.smpl_model if smpl else None
        formats = [f for f in FORMATS if f in self.formats or (f == "smpl" and smpl_model)]
        folder = self.out_root / f"{next(self._count):04d}_{kind}"

        def produced(pipe: Any, todo: list[RunItem]) -> tuple[list[Any], dict[str, Any]]:
            # one generation at a time on the shared pipeline; the files of one request are
            # written while the next generates (``--concurrency`` above 1)
            with self._lock:
                motions, extra = produce(pipe, todo)
            report(0.6, "writing the files (video, BVH, glTF)")
            return motions, extra

        with _warnings() as notes:
            run, _ = generate_run(
                folder,
                [RunItem(0, title, stem)],
                produced,
                source=self.source,
                formats=formats,
                record={
                    "demo": kind,
                    "smpl_model": None if smpl_model is None else smpl_model.path,
                    "generation_config": config.to_dict(),
                    "seed": seed,
                },
                smpl_model=smpl_model,
            )
        item = run["items"][0]
        files = {fmt: folder / item["files"][fmt] for fmt in formats}
        files["run"] = folder / RUN_FILE
        frames = int(item["frames"])
        report(0.9, "drawing the timeline")
        viewer = files.get("glb")
        if not item["files"].get("glb_skinned"):
            viewer = _stick_figure(files["joints"], folder / f"{stem}_view.glb", title)
        timeline = _timeline(files["joints"], folder / "timeline.png", kind, marked or [])
        summary = f"{frames} frames ({frames / FPS:g} s at {FPS} fps), seed {seed}"
        summary += f"; {note}" if note else ""
        report(1.0, "done")
        return DemoResult(
            folder, files, viewer, timeline, frames, seed, summary, marked or [], notes
        )


# ---------------------------------------------------------------------- parsing the page


def parse_spans(spans: str, frames: int) -> list[tuple[int, int]]:
    """``"2-4, 6-7.5"`` (seconds) -> frame ranges ``[(40, 80), (120, 150)]`` within
    ``frames`` (end exclusive).

    Raises:
        InvalidInputError: empty, malformed, reversed or outside the motion's length.
    """
    parts = [p.strip() for p in re.split(r"[,;\n]", spans or "") if p.strip()]
    if not parts:
        raise InvalidInputError(
            "Spans: give at least one span in seconds, e.g. 2-4 (or 0-1.5, 6-8 for two)"
        )
    length = frames / FPS
    ranges = []
    for part in parts:
        match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(?:-|:|to)\s*(\d+(?:\.\d*)?|\.\d+)", part)
        if match is None:
            raise InvalidInputError(
                f"Spans: {part!r} is not a span in seconds START-END, e.g. 2-4 or 1.5-3.2"
            )
        start, end = (float(v) for v in match.groups())
        if not start < end <= length + 1e-9:
            raise InvalidInputError(
                f"Spans: {part!r} needs START < END <= {length:g} s (the motion is {frames} "
                f"frames, {length:g} s long)"
            )
        ranges.append((round(start * FPS), round(end * FPS)))
    return ranges


def parse_sequence_rows(rows: str) -> tuple[list[str], list[int]]:
    """``"walks forward : 4\\nsits down : 3"`` -> the texts and their frames (20 fps); the
    last ``:`` of a row splits it.

    Raises:
        InvalidInputError: no row, or a row that is not ``prompt : seconds``.
    """
    texts, lengths = [], []
    lines = [line.strip() for line in (rows or "").splitlines() if line.strip()]
    if not lines:
        raise InvalidInputError(
            "Sequence: give one 'prompt : seconds' row per segment, e.g. 'a person walks "
            "forward : 4'"
        )
    for n, line in enumerate(lines, 1):
        text, sep, seconds = line.rpartition(":")
        try:
            value = float(seconds)
            if not sep or not text.strip() or not math.isfinite(value):
                raise ValueError
        except ValueError:
            raise InvalidInputError(
                f"Sequence row {n}: {line!r} is not 'prompt : seconds', e.g. 'a person "
                "walks forward : 4'"
            ) from None
        if value * FPS < MIN_MOTION_LENGTH:
            raise InvalidInputError(
                f"Sequence row {n}: {value:g} s is too short; each segment needs at least "
                f"{MIN_MOTION_LENGTH / FPS:g} s"
            )
        texts.append(text.strip())
        lengths.append(int(round(value * FPS)))
    return texts, lengths


def _check_prompt(prompt: Any) -> str:
    from hftrainer_mogents.pipeline.long_motion import check_sequence

    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidInputError("Prompt: it is empty; describe the motion in words")
    # the pipeline's own text checks (CLIP's cleaning must leave words), without the model
    _labelled("Prompt", lambda: check_sequence([prompt], [MIN_MOTION_LENGTH], UNIT_LENGTH))
    return prompt.strip()


def _frames_of(seconds: Any, label: str) -> int:
    """Seconds -> the frames the model generates (the pipeline's length rule)."""
    from hftrainer_mogents.pipeline.inputs import normalize_length

    if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InvalidInputError(f"{label}: give a number of seconds (or tick 'estimate')")
    if not math.isfinite(seconds) or seconds * FPS < MIN_MOTION_LENGTH:
        raise InvalidInputError(
            f"{label}: {seconds:g} s is too short; the model makes motions of "
            f"{MIN_MOTION_LENGTH / FPS:g} to {MAX_MOTION_LENGTH / FPS:g} s (or tick 'estimate')"
        )
    return _labelled(label, lambda: normalize_length(float(seconds) * FPS))


def _length_note(seconds: Any, frames: int | None, estimate: bool) -> str:
    if estimate or frames is None:
        return "length estimated by the model"
    if abs(float(seconds) * FPS - frames) > 1e-6:
        return (
            f"{seconds:g} s asked: lengths are whole 0.2 s steps within "
            f"{MIN_MOTION_LENGTH / FPS:g}-{MAX_MOTION_LENGTH / FPS:g} s"
        )
    return ""


def _transition_frames(seconds: Any) -> int:
    if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InvalidInputError("Transition: give a number of seconds, e.g. 2")
    low, high = UNIT_LENGTH / FPS, (MAX_MOTION_LENGTH - MIN_MOTION_LENGTH + UNIT_LENGTH) / FPS
    if not math.isfinite(seconds) or not low <= seconds <= high:
        raise InvalidInputError(
            f"Transition: {seconds:g} s; give {low:g} to {high:g} s (how much of the previous "
            "segment each seam keeps)"
        )
    # whole token steps, as the pipeline needs; its own check gives the range
    return int(round(seconds * FPS / UNIT_LENGTH)) * UNIT_LENGTH


def _config(settings: Mapping[str, Any] | None) -> GenerationConfig:
    values = {k: v for k, v in (settings or {}).items() if v is not None}
    unknown = sorted(set(values) - set(GENERATION_FIELDS))
    if unknown:
        raise InvalidInputError(f"Advanced settings: unknown setting(s) {unknown}")
    for name in GENERATION_FIELDS:
        # the page's number fields give floats: a whole float is the integer it shows
        kind = GenerationConfig.__dataclass_fields__[name].type
        if kind in (int, "int") and isinstance(values.get(name), float):
            if not values[name].is_integer():
                raise InvalidInputError(f"Advanced settings: {name} must be a whole number")
            values[name] = int(values[name])
    return _labelled("Advanced settings", lambda: GenerationConfig(**values))


def _seed(seed: Any) -> int:
    """The page's seed (a number, text or empty) -> the seed used (random when empty)."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return secrets.randbelow(SEED_LIMIT)
    try:
        value = float(seed) if isinstance(seed, str) else seed
        if isinstance(value, bool) or not float(value).is_integer():
            raise ValueError
        value = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(
            f"Seed: {seed!r} is not a whole number; give one in [0, 2**63) or press 'random'"
        ) from None
    if not 0 <= value < 2**63:
        raise InvalidInputError(f"Seed: {value} is outside [0, 2**63); press 'random' for one")
    return value


def _read_motion(motion: Any) -> np.ndarray:
    """The edit's source: an array, or a ``.npy`` file holding a float (T, 263) motion."""
    if motion is None or (isinstance(motion, str) and not motion):
        raise InvalidInputError(
            "Motion: there is none yet; generate one in the Generate tab or upload a .npy"
        )
    if not isinstance(motion, np.ndarray):
        path = Path(motion)
        try:
            motion = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            raise InvalidInputError(
                f"Motion: {path.name} is not a readable .npy array; upload the .npy "
                "(HumanML3D-263) of a generated motion"
            ) from None
    if (
        not isinstance(motion, np.ndarray)
        or motion.ndim != 2
        or motion.shape[1] != 263
        or not np.issubdtype(motion.dtype, np.floating)
    ):
        raise InvalidInputError(
            f"Motion: the file holds a {getattr(motion, 'shape', '?')} "
            f"{getattr(motion, 'dtype', type(motion).__name__)} array; give a float (T, 263) "
            "HumanML3D-263 motion"
        )
    frames = len(motion)
    if frames % UNIT_LENGTH or not MIN_MOTION_LENGTH <= frames <= MAX_MOTION_LENGTH:
        raise InvalidInputError(
            f"Motion: it has {frames} frames; the model edits a multiple of {UNIT_LENGTH} "
            f"frames in [{MIN_MOTION_LENGTH}, {MAX_MOTION_LENGTH}] "
            f"({MIN_MOTION_LENGTH / FPS:g}-{MAX_MOTION_LENGTH / FPS:g} s)"
        )
    if not np.isfinite(motion).all():
        raise InvalidInputError("Motion: it holds NaN or infinite values")
    return motion.astype(np.float32)


def _complement(ranges: list[tuple[int, int]], frames: int) -> list[tuple[int, int]]:
    mask = np.ones(frames, dtype=bool)
    for start, end in ranges:
        mask[start:end] = False
    return [tuple(r) for r in _ranges_of(mask)]  # type: ignore[misc]


def _ranges_of(mask: np.ndarray) -> list[list[int]]:
    """The ``[start, end)`` runs of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return [
        [int(a), int(b)] for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))
    ]


def _labelled(label: str, check: Callable[[], Any]) -> Any:
    """Run one of the package's checks; a refusal names the page's field, in its words."""
    try:
        return check()
    except InvalidInputError as err:
        message = re.sub(r"\btexts\[\d+\]", "the prompt", str(err))
        message = re.sub(r"\b(lengths\[\d+\]|length) = ", "", message)
        message = re.sub(r"\bkeep\[\d+\]", "the kept frames", message)
        raise InvalidInputError(f"{label}: {message}") from None


def _no_progress(fraction: float, what: str) -> None:
    return None


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.thread = threading.get_ident()  # this request's, not a concurrent one's

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        # the pipeline names a batch's items (keep[0], lengths[1]); the page has one item
        message = re.sub(r"^(keep|lengths)\[\d+\]: ", "", record.getMessage())
        if message not in self.messages:
            self.messages.append(message)


@contextmanager
def _warnings() -> Iterator[list[str]]:
    """The package's warnings logged inside the block (the page shows them beside the result)."""
    handler = _Collect()
    log = logging.getLogger("hftrainer_mogents")
    log.addHandler(handler)
    try:
        yield handler.messages
    finally:
        log.removeHandler(handler)


# ---------------------------------------------------------------------- pictures


def _stick_figure(joints_path: Path, path: Path, title: str) -> Path:
    """The skeleton with a stick-figure mesh: what the browser's 3D viewer can draw."""
    from hftrainer_mogents.motion import gltf

    joints = np.load(joints_path)
    doc = gltf.skeleton_gltf(
        joints, fps=FPS, extras={"title": title, "source": "mogents demo"}, bones=True
    )
    gltf.save_glb(path, doc)
    return path


def _timeline(joints_path: Path, path: Path, kind: str, marked: list[list[int]]) -> Path:
    """Mean joint speed per frame, the marked spans shaded (regenerated frames of an edit, the
    segments of a sequence in turn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    joints = np.load(joints_path)
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean(axis=1) * FPS
    seconds = (np.arange(len(speed)) + 0.5) / FPS
    fig, ax = plt.subplots(figsize=(8, 1.8), dpi=100)
    for n, (start, end) in enumerate(marked):
        if kind == "sequence" and n % 2:
            continue
        ax.axvspan(start / FPS, end / FPS, color="tab:orange", alpha=0.3, lw=0)
    ax.plot(seconds, speed, color="tab:blue", lw=1.5)
    ax.set_xlim(0, len(joints) / FPS)
    ax.set_xlabel("seconds")
    ax.set_ylabel("joint speed (m/s)")
    label = {
        "edit": "shaded: regenerated",
        "sequence": "shaded: every other segment",
    }.get(kind, "joint speed")
    ax.set_title(label, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def result_json(result: DemoResult) -> str:
    """The request's ``run.json`` as text (for the page's details fold)."""
    return json.dumps(json.loads(result.files["run"].read_text(encoding="utf-8")), indent=2)
