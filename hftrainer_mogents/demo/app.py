"""The web demo's page (Gradio Blocks): three tabs over one :class:`~.backend.DemoBackend`.

- **Generate**: prompt (with examples), length in seconds or the model's estimate, seed (with a
  "random" button), the sampling settings in an "Advanced settings" fold; the result in a 3D
  viewer (the ``.glb``: the SMPL body with ``--model-dir``, else the skeleton as a stick figure)
  beside the stick-figure video, a timeline and the downloads (``.npy`` 263, joints, ``.bvh``,
  ``.glb``, SMPL ``.npz`` where there is a body model, ``run.json``).
- **Edit**: the last result or an uploaded ``.npy``, spans in seconds to regenerate (or to keep),
  a new prompt; the timeline shades the regenerated frames and the video's title names them.
- **Sequence**: ``prompt : seconds`` rows -> one long motion.

Every request is queued (``concurrency`` at a time, one by default) and reports its progress;
our typed errors appear in the page as a readable message (``gr.Error``), never a traceback.
Gradio is imported only here (:func:`require_gradio` names the extra that installs it).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable
from typing import Any

from hftrainer_mogents.demo.backend import SEED_LIMIT, DemoBackend, DemoResult
from hftrainer_mogents.errors import InvalidInputError, MissingDependencyError, MoGenTSError
from hftrainer_mogents.generation_config import GENERATION_FIELDS, GenerationConfig

__all__ = ["EXAMPLES", "build_demo", "launch", "require_gradio"]

logger = logging.getLogger(__name__)

EXAMPLES = [
    "a person walks forward and then turns around",
    "a man jumps up and down twice",
    "someone waves with the right hand",
    "a person sits down on a chair",
    "a person runs in a circle",
]
SEQUENCE_EXAMPLE = "a person walks forward : 4\na person jumps : 3\na person waves : 3"
DOWNLOAD_ORDER = ("npy", "joints", "bvh", "glb", "smpl", "mp4", "run")


def require_gradio() -> Any:
    """The :mod:`gradio` module.

    Raises:
        MissingDependencyError: it is not installed (the ``demo`` extra has it).
    """
    try:
        import gradio
    except ImportError as err:
        raise MissingDependencyError(
            'the web demo needs gradio: pip install "hftrainer-mogents[demo]"'
        ) from err
    return gradio


def _answer(gr: Any, run: Callable[[], DemoResult]) -> DemoResult:
    """Run one request; our errors become the page's message, anything else a short one (its
    traceback goes to the server's log, not the page)."""
    try:
        return run()
    except MoGenTSError as err:
        raise gr.Error(str(err), title="Please check the input", print_exception=False) from None
    except Exception as err:
        logger.exception("the demo's request failed")
        raise gr.Error(
            f"the request failed ({type(err).__name__}); the server's log has the details",
            title="Something went wrong",
        ) from None


def _shown(result: DemoResult) -> tuple[Any, ...]:
    """A result as the outputs of a tab: summary, viewer, video, timeline, downloads, last npy."""
    summary = f"**{result.summary}**"
    if result.warnings:
        summary += "\n\n" + "\n".join(f"- note: {w}" for w in result.warnings)
    files = [str(result.files[k]) for k in DOWNLOAD_ORDER if k in result.files]
    return (
        summary,
        str(result.viewer),
        str(result.files["mp4"]),
        str(result.timeline),
        files,
        str(result.files["npy"]),
    )


def build_demo(backend: DemoBackend, *, title: str = "MoGenTS text-to-motion") -> Any:
    """The page: a ``gr.Blocks`` whose three tabs call ``backend``.

    Args:
        backend: the loaded model and its requests.
        title: the page's heading.

    Returns:
        The ``gradio.Blocks`` (call :func:`launch` or ``.launch()`` on it).

    Raises:
        MissingDependencyError: gradio is not installed.
    """
    gr = require_gradio()
    defaults = GenerationConfig()
    device = str(backend.pipe.device)

    def outputs_of(prefix: str) -> list[Any]:
        summary = gr.Markdown(elem_id=f"{prefix}-summary")
        with gr.Row():
            viewer = gr.Model3D(
                label="3D (drag to turn, scroll to zoom)",
                elem_id=f"{prefix}-model3d",
                clear_color=(0.95, 0.95, 0.95, 1.0),
                height=420,
            )
            video = gr.Video(
                label="stick figure", elem_id=f"{prefix}-video", autoplay=True, loop=True
            )
        timeline = gr.Image(
            label="timeline", elem_id=f"{prefix}-timeline", type="filepath", height=200
        )
        files = gr.File(label="downloads", elem_id=f"{prefix}-files", file_count="multiple")
        return [summary, viewer, video, timeline, files]

    def seed_row(prefix: str) -> Any:
        with gr.Row():
            seed = gr.Textbox(
                label="seed (empty: random; the seed used is shown with the result)",
                placeholder="random",
                elem_id=f"{prefix}-seed",
                scale=3,
            )
            dice = gr.Button("random", elem_id=f"{prefix}-random", scale=1)
        dice.click(lambda: str(secrets.randbelow(SEED_LIMIT)), outputs=seed, queue=False)
        return seed

    with gr.Blocks(title=title) as demo:
        gr.Markdown(
            f"# {title}\nText to 3D human motion (HumanML3D skeleton, 20 fps) with MoGenTS "
            f"(NeurIPS 2024), running on `{device}`. Model: `{backend.source.model}`."
        )
        last = gr.State(None)
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                prompt = gr.Textbox(
                    label="prompt", placeholder=EXAMPLES[0], elem_id="gen-prompt", lines=2
                )
                gr.Examples(EXAMPLES, inputs=prompt)
                with gr.Row():
                    seconds = gr.Number(
                        label="length (seconds, 2-9.8)", value=4.0, elem_id="gen-length"
                    )
                    estimate = gr.Checkbox(
                        label="estimate the length from the text", elem_id="gen-estimate"
                    )
                gen_seed = seed_row("gen")
                with gr.Accordion("Advanced settings", open=False, elem_id="gen-advanced"):
                    settings = []
                    for spec in dataclasses.fields(GenerationConfig):
                        value = getattr(defaults, spec.name)
                        info = spec.metadata["help"]
                        if spec.type in (bool, "bool"):
                            box = gr.Checkbox(label=spec.name, value=value, info=info)
                        else:
                            box = gr.Number(
                                label=spec.name,
                                value=value,
                                info=info,
                                precision=0 if spec.type in (int, "int") else None,
                            )
                        settings.append(box)
                gen_button = gr.Button("Generate", variant="primary", elem_id="gen-run")
                gen_out = outputs_of("gen")
            with gr.Tab("Edit", id="edit"):
                gr.Markdown(
                    "Regenerate part of a motion from a new prompt and keep the rest. The "
                    "motion is the last result (of any tab) or a `.npy` (HumanML3D-263) you "
                    "upload. Spans are in seconds, e.g. `1-2.5` or `0-1, 3-4`; they are snapped "
                    "to whole 0.2 s token steps."
                )
                with gr.Row():
                    source = gr.Radio(
                        ["last result", "uploaded .npy"],
                        value="last result",
                        label="motion",
                        elem_id="edit-source",
                    )
                    upload = gr.File(
                        label="upload a .npy", file_types=[".npy"], elem_id="edit-upload"
                    )
                edit_prompt = gr.Textbox(
                    label="prompt for the regenerated frames", elem_id="edit-prompt"
                )
                with gr.Row():
                    spans = gr.Textbox(label="spans (seconds)", value="1-2.5", elem_id="edit-spans")
                    which = gr.Radio(
                        ["regenerate these spans", "keep these spans"],
                        value="regenerate these spans",
                        label="the spans are",
                        elem_id="edit-which",
                    )
                edit_seed = seed_row("edit")
                edit_button = gr.Button("Edit", variant="primary", elem_id="edit-run")
                edit_out = outputs_of("edit")
            with gr.Tab("Sequence", id="sequence"):
                gr.Markdown(
                    "Several prompts, one after the other, as one long motion: one "
                    "`prompt : seconds` row per segment (each at least 2 s). Each seam keeps "
                    "the transition's seconds of the previous segment and regenerates the rest."
                )
                rows = gr.Textbox(
                    label="prompt : seconds (one per line)",
                    value=SEQUENCE_EXAMPLE,
                    lines=5,
                    elem_id="seq-rows",
                )
                transition = gr.Number(
                    label="transition (seconds)", value=2.0, elem_id="seq-transition"
                )
                seq_seed = seed_row("seq")
                seq_button = gr.Button(
                    "Generate the sequence", variant="primary", elem_id="seq-run"
                )
                seq_out = outputs_of("seq")

        def values(raw: tuple[Any, ...]) -> dict[str, Any]:
            return dict(zip(GENERATION_FIELDS, raw))

        # Gradio passes a Progress to the positional parameter whose default is one; the first
        # parameter, so that the inputs (their number set by the settings) follow as *args
        tracker = gr.Progress(track_tqdm=True)  # the pipeline's own bar shows too

        def on_generate(progress: Any = tracker, *args: Any) -> tuple[Any, ...]:
            text, secs, est, seed, *raw = args
            return _shown(
                _answer(
                    gr,
                    lambda: backend.generate(
                        text,
                        secs,
                        estimate=est,
                        seed=seed,
                        settings=values(raw),
                        progress=lambda f, d: progress(f, desc=d),
                    ),
                )
            )

        def on_edit(progress: Any = tracker, *args: Any) -> tuple[Any, ...]:
            src, uploaded, previous, text, span_text, mode, seed, *raw = args
            motion = previous if src == "last result" else _path_of(uploaded)

            def run() -> DemoResult:
                if src != "last result" and motion is None:
                    raise InvalidInputError("Motion: upload a .npy first (or choose 'last result')")
                return backend.edit(
                    motion,
                    text,
                    span_text,
                    regenerate=mode.startswith("regenerate"),
                    seed=seed,
                    settings=values(raw),
                    progress=lambda f, d: progress(f, desc=d),
                )

            return _shown(_answer(gr, run))

        def on_sequence(progress: Any = tracker, *args: Any) -> tuple[Any, ...]:
            text, trans, seed, *raw = args
            return _shown(
                _answer(
                    gr,
                    lambda: backend.sequence(
                        text,
                        transition_seconds=trans,
                        seed=seed,
                        settings=values(raw),
                        progress=lambda f, d: progress(f, desc=d),
                    ),
                )
            )

        gen_button.click(
            on_generate,
            inputs=[prompt, seconds, estimate, gen_seed, *settings],
            outputs=[*gen_out, last],
        )
        prompt.submit(
            on_generate,
            inputs=[prompt, seconds, estimate, gen_seed, *settings],
            outputs=[*gen_out, last],
        )
        edit_button.click(
            on_edit,
            inputs=[source, upload, last, edit_prompt, spans, which, edit_seed, *settings],
            outputs=[*edit_out, last],
        )
        seq_button.click(
            on_sequence,
            inputs=[rows, transition, seq_seed, *settings],
            outputs=[*seq_out, last],
        )
    return demo


def _path_of(uploaded: Any) -> str | None:
    """Gradio gives an upload as a path (or an object with ``.name``, in older versions)."""
    if uploaded is None:
        return None
    return str(getattr(uploaded, "name", uploaded))


def launch(
    backend: DemoBackend,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    concurrency: int = 1,
    block: bool = True,
) -> Any:
    """Build the page and serve it.

    Args:
        backend: the loaded model and its requests.
        host: the address to listen on (``0.0.0.0`` for every interface, as a Space does).
        port: the port (None: Gradio's, 7860 or the next free one).
        share: also open a public ``gradio.live`` link.
        concurrency: requests served at once (more queue; one fits a CPU).
        block: keep serving until interrupted (False returns at once, as the tests need).

    Returns:
        The ``gradio.Blocks`` being served.

    Raises:
        MissingDependencyError: gradio is not installed.
    """
    demo = build_demo(backend)
    demo.queue(default_concurrency_limit=max(1, int(concurrency)))
    demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        allowed_paths=[str(backend.out_root)],
        max_file_size="20mb",  # a 196-frame motion is 200 kB; refuse what cannot be one
        prevent_thread_lock=not block,
        show_error=False,
    )
    return demo
