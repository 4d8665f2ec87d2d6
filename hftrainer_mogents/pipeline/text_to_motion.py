"""``MoGenTSPipeline``: text -> HumanML3D-263 motion.

Data flow (docs/architecture.md): text -> CLIP feature (once per call) -> [length estimator]
-> 1D and 2D mask transformers (base tokens) -> 1D and 2D residual transformers (all quantizer
layers) -> dual-stream VQ decoder -> normalised 263 -> ``* Std + Mean``.

Two execution modes:

- ``"fast"`` (default): the text is encoded once, the conditional and unconditional passes run
  as one forward, each sample draws from its own generator (seeded from ``seed`` and the sample's
  index in ``texts``) and is computed as if it were alone, so its motion does not depend on the
  rest of the batch. Upstream's batch-coupled quirks (the 2D residual transformer's scrambled
  spatial add mixes samples; the mask-id clip applies to the whole batch; the decoder sees the
  batch's padding) are evaluated per sample, i.e. as the official code computes a prompt
  generated on its own.
- ``"reference"``: the official call order and random draws, batch by batch: with ``seed=S`` it
  draws exactly what the official code draws after ``torch.manual_seed(S)`` (CPU).

The package's other modules: :mod:`.inputs` (input checks), :mod:`.prepare` (settings, seeds and
generators of a call), :mod:`.decoding` (one batch: tokens and motions), :mod:`.editing`
(``edit``), :mod:`.long_motion` (``generate_long``), :mod:`.output` (``MoGenTSOutput``); the
host's calling conventions come from :class:`~hftrainer_mogents.host_compat.HostPipelineMixin`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hftrainer_mogents import artifact
from hftrainer_mogents.bundle import MoGenTSBundle
from hftrainer_mogents.generation_config import GenerationConfig
from hftrainer_mogents.host_compat import HostPipelineMixin
from hftrainer_mogents.modeling.sampling import Draws
from hftrainer_mogents.pipeline.decoding import (
    check_finite,
    decode_motion,
    decode_tokens,
    generate_fast,
    generate_reference,
)
from hftrainer_mogents.pipeline.editing import EditingMixin
from hftrainer_mogents.pipeline.inputs import _check_inputs
from hftrainer_mogents.pipeline.long_motion import LongMotionMixin
from hftrainer_mogents.pipeline.output import MoGenTSOutput
from hftrainer_mogents.pipeline.prepare import PreparedCall, prepare_call
from hftrainer_mogents.utils.cuda_graphs import CUDAGraphCache
from hftrainer_mogents.utils.device import resolve_device

__all__ = ["MoGenTSPipeline"]


class MoGenTSPipeline(HostPipelineMixin, EditingMixin, LongMotionMixin):
    """Generate HumanML3D-263 motions from text with MoGenTS.

    Besides our one-argument ``from_pretrained(path)``, it takes the hftrainer host's pipeline
    conventions (``from_pretrained(bundle_cls, path, bundle_kwargs=...)``, ``from_config``,
    ``from_checkpoint(bundle_cls, bundle_cfg, ckpt_path)``) and is built by the host's
    ``PIPELINES.build({"type": "MoGenTSPipeline", "bundle": bundle})``; the host's forms come
    from :class:`~hftrainer_mogents.host_compat.HostPipelineMixin`. Temporal editing (:meth:`edit`)
    and long motions (:meth:`generate_long`) run over the same bundle, from
    :class:`~.editing.EditingMixin` and :class:`~.long_motion.LongMotionMixin`.

    Examples:
        >>> pipe = MoGenTSPipeline.from_pretrained("checkpoints/mogents/humanml3d")  # doctest: +SKIP
        >>> [m.shape for m in pipe.infer_t2m(["a person walks forward"], [120], seed=0)]  # doctest: +SKIP
        [(120, 263)]
    """

    # the bundle class of the one-argument ``from_pretrained`` and of ``from_config``
    BUNDLE_CLS: type[MoGenTSBundle] = MoGenTSBundle

    def __init__(
        self,
        bundle: MoGenTSBundle,
        *,
        device: str | torch.device | None = None,
        cuda_graphs: bool = True,
        generation_config: GenerationConfig | Mapping[str, Any] | None = None,
    ) -> None:
        self.bundle = bundle.eval()
        if device is not None:
            self.bundle.to_runtime(device=resolve_device(device))
        self._progress: dict[str, Any] = {}
        # the sampling settings of a call that gives none (like transformers' generation_config)
        self.generation_config = (
            GenerationConfig()
            if generation_config is None
            else GenerationConfig.coerce(generation_config)
        )
        # fast mode on CUDA replays each transformer forward as a CUDA graph (captured on first
        # use per batch shape); graphs read the weights in place, so replacing parameter tensors
        # needs ``pipe.cuda_graphs.clear()``
        self.cuda_graphs = CUDAGraphCache(enabled=cuda_graphs)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        path_or_repo_id: str | os.PathLike[str] | type | None = artifact.DEFAULT_REPO_ID,
        pretrained_model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        bundle_cls: type | None = None,
        bundle_kwargs: Mapping[str, Any] | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        force_download: bool = False,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        text_encoder_dtype: str | None = None,
        load_length_estimator: bool = True,
        cuda_graphs: bool = True,
        generation_config: GenerationConfig | Mapping[str, Any] | None = None,
    ) -> MoGenTSPipeline:
        """Load the bundle (:meth:`MoGenTSBundle.from_pretrained`) and wrap it.

        Two calling conventions:

        - ours and the zoo's: ``from_pretrained(path_or_repo_id, device=..., ...)``;
        - the hftrainer host's: ``from_pretrained(bundle_cls, path, bundle_kwargs=None, ...)``:
          ``bundle_cls.from_pretrained(path, **bundle_kwargs)``, then ``device``,
          ``cuda_graphs`` and ``generation_config`` go to the pipeline.

        Args:
            path_or_repo_id: artifact folder or hub repo id (default, and None: the published
                ``ZeyuLing/hftrainer-mogents-humanml3d``), or (host form) the bundle class.
            pretrained_model_name_or_path: (host form only) the artifact.
            bundle_cls: (host form) the bundle class, by keyword.
            bundle_kwargs: more options of the bundle's ``from_pretrained`` (either form).
            device: default ``"cuda"`` when available, else ``"cpu"`` (host form: the bundle's
                own default, unless given).
            dtype: compute dtype of the generation networks (float32 default; ``torch.bfloat16``
                for AMX CPUs and tensor-core GPUs, cast once here).
            cuda_graphs: on CUDA, replay the transformer forwards of fast mode as CUDA graphs
                (same results, far fewer kernel launches; False runs them eagerly).
            generation_config: the pipeline's default sampling settings (a
                :class:`GenerationConfig` or a dict of its settings).
            revision: as :meth:`MoGenTSBundle.from_pretrained` (the hub options
                ``revision``, ``cache_dir``, ``local_files_only``, ``token`` and
                ``force_download``, and ``text_encoder_dtype``, ``load_length_estimator`` and
                ``verify_checksums``, go to the bundle unchanged).

        Raises:
            InvalidInputError: a second positional argument without a bundle class first, or an
                option given both as an argument and in ``bundle_kwargs``.
        """
        if path_or_repo_id is None:  # None is the default repo, as in the bundle's
            path_or_repo_id = artifact.DEFAULT_REPO_ID
        options = {
            "revision": revision,
            "cache_dir": cache_dir,
            "local_files_only": local_files_only,
            "token": token,
            "force_download": force_download,
            "dtype": dtype,
            "text_encoder_dtype": text_encoder_dtype,
            "load_length_estimator": load_length_estimator,
        }
        pipeline_kwargs = {"cuda_graphs": cuda_graphs, "generation_config": generation_config}
        host = cls._host_from_pretrained(
            path_or_repo_id,
            pretrained_model_name_or_path,
            bundle_cls,
            options,
            bundle_kwargs,
            device=device,
            **pipeline_kwargs,
        )
        if host is not None:
            return host
        options = {"device": resolve_device(device), **options, **dict(bundle_kwargs or {})}
        bundle = cls.BUNDLE_CLS.from_pretrained(path_or_repo_id, **options)
        return cls(bundle, **pipeline_kwargs)

    @property
    def device(self) -> torch.device:
        """Where the networks live."""
        return self.bundle.device

    def to(self, device: str | torch.device) -> MoGenTSPipeline:
        """Move the networks to ``device``."""
        self.bundle.to_runtime(device=resolve_device(device))
        self.cuda_graphs.clear()
        return self

    def fingerprint(self) -> str:
        """A sha256 of what decides the outputs: every network's weights (names, dtypes, values)
        and the normalisation statistics. Batch jobs record it so that a resume with another
        model (or the same one cast to another dtype) is refused."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.bundle.state_dict().items()):
            data = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
            digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Options for the tqdm bar over batches (e.g. ``disable=True``)."""
        self._progress = dict(kwargs)

    def progress_bar(self, iterable: Iterable[Any], total: int | None = None) -> Iterable[Any]:
        """``iterable`` wrapped in a tqdm bar (off on non-zero ranks and when disabled)."""
        from tqdm.auto import tqdm

        options = {"desc": "MoGenTS", "unit": "batch", "leave": False, **self._progress}
        if int(os.environ.get("RANK", "0")) != 0:
            options["disable"] = True
        return tqdm(iterable, total=total, **options)

    # ------------------------------------------------------------------ generation

    def infer_t2m(self, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        """Generate one motion per text; returns a list of ``(T_i, 263)`` float32 arrays in
        physical units: ``pipe.infer_t2m(...)`` is ``pipe(...).motions``, with the parameters of
        :meth:`__call__`, whose order is the zoo's signature: ``infer_t2m(captions, lengths,
        cond_scale, time_steps, topkr, temperature, res_cond_scale, res_temperature,
        gumbel_sample, clamp)`` positionally, the rest by keyword (settings left ``None`` come
        from ``generation_config``).

        Raises:
            TypeError: ``return_dict`` is given (the result is always the list of motions).
        """
        if "return_dict" in kwargs:
            raise TypeError(
                "infer_t2m() returns the list of motions and takes no return_dict; call the "
                "pipeline itself for a MoGenTSOutput or a tuple"
            )
        return self(*args, **kwargs).motions

    @torch.inference_mode()
    def __call__(
        self,
        texts: Sequence[str] | str,
        lengths: Sequence[float] | None = None,
        cond_scale: float | None = None,
        time_steps: int | None = None,
        topkr: float | None = None,
        temperature: float | None = None,
        res_cond_scale: float | None = None,
        res_temperature: float | None = None,
        gumbel_sample: bool | None = None,
        clamp: bool | None = None,
        *,
        generation_config: GenerationConfig | Mapping[str, Any] | None = None,
        seed: int | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        batch_size: int = 32,
        mode: str = "fast",
        text_features: torch.Tensor | np.ndarray | None = None,
        return_tokens: bool = False,
        return_dict: bool = True,
    ) -> MoGenTSOutput | tuple[list[np.ndarray], list[int]]:
        """Generate motions.

        Args:
            texts: captions (a single string counts as one).
            lengths: frames at 20 fps per text, numbers (see ``clamp`` for how they are fitted
                to the model); None samples them from the length estimator.
            cond_scale: overrides this setting of ``generation_config`` for this call (None
                keeps its value). This and the six settings after it come in the zoo's
                positional order (``infer_t2m(captions, lengths, cond_scale, time_steps, topkr,
                temperature, res_cond_scale, res_temperature, gumbel_sample, clamp)``); each is
                documented in :class:`~hftrainer_mogents.generation_config.GenerationConfig`.
            time_steps: as ``cond_scale``, for this setting.
            topkr: as ``cond_scale``, for this setting.
            temperature: as ``cond_scale``, for this setting.
            res_cond_scale: as ``cond_scale``, for this setting.
            res_temperature: as ``cond_scale``, for this setting.
            gumbel_sample: as ``cond_scale``, for this setting.
            clamp: how lengths are fitted to the model. None (default): floored to a multiple of
                4 and kept within 196 frames, with a warning; below 40 frames is refused. True
                (the zoo's ``clamp_length``): the same, and a short length is raised to 40 with
                the warning. False: used as given, refusing any that is not already a multiple of
                4 within [40, 196] (the model cannot generate other lengths).
            generation_config: the sampling settings (default :attr:`generation_config`, the
                paper's evaluation settings); see
                :class:`~hftrainer_mogents.generation_config.GenerationConfig`.
            seed: makes the call reproducible; None draws one (returned in the output).
            generator: instead of ``seed``, a ``torch.Generator`` or one per text. A list gives
                each text its own draws (fast mode), whatever its index or batch; one generator
                seeds the call (fast mode: it draws the call's seed, returned in the output, so the
                generator advances between calls) or is the official single generator (reference
                mode). A CPU generator may drive a CUDA pipeline (draws move to the GPU), except in
                reference mode, which needs one on the pipeline's device.
            batch_size: texts per forward batch.
            mode: ``"fast"`` or ``"reference"`` (module docstring).
            text_features: precomputed (B, 512) CLIP text features of ``texts`` (e.g. from another
                machine, or interpolated); the text encoder is then skipped.
            return_tokens: also return the token ids of each motion.
            return_dict: False returns ``(motions, lengths)``.

        Returns:
            :class:`MoGenTSOutput`.

        Raises:
            InvalidInputError: bad texts, lengths or settings (checked before any compute).
            NonFiniteOutputError: a motion holds NaN or infinite values (names the prompts).
        """
        # 1. Check inputs
        texts, frames, features = _check_inputs(self.bundle, texts, lengths, clamp, text_features)
        # 2. Settings and randomness: a seed for the call, or the caller's generators
        call = self._prepare_call(
            len(texts),
            generation_config=generation_config,
            seed=seed,
            generator=generator,
            batch_size=batch_size,
            mode=mode,
            time_steps=time_steps,
            cond_scale=cond_scale,
            res_cond_scale=res_cond_scale,
            topkr=topkr,
            temperature=temperature,
            res_temperature=res_temperature,
            gumbel_sample=gumbel_sample,
        )

        # 3. Generate batch by batch: text -> lengths -> base tokens -> residual layers -> decode
        motions, out_lengths, tokens = self._generate(texts, frames, features, call)
        # 4. Outputs
        if not return_dict:
            return motions, out_lengths
        return MoGenTSOutput(
            motions=motions,
            lengths=out_lengths,
            seed=call.seed,
            mode=mode,
            tokens=tokens if return_tokens else None,
            settings=call.settings(),
            generation_config=call.config,
        )

    def _generate(
        self,
        texts: list[str],
        frames: list[int] | None,
        features: torch.Tensor | None,
        call: PreparedCall,
    ) -> tuple[list[np.ndarray], list[int], list[dict[str, np.ndarray]]]:
        """The motions, lengths and token ids of ``texts``, batch by batch in ``call.mode``."""
        motions: list[np.ndarray] = []
        lengths: list[int] = []
        tokens: list[dict[str, np.ndarray]] = []
        starts = range(0, len(texts), call.batch_size)
        for start in self.progress_bar(starts, total=len(starts)):
            stop = min(start + call.batch_size, len(texts))
            chunk = texts[start:stop]
            chunk_frames = None if frames is None else frames[start:stop]
            chunk_features = None if features is None else features[start:stop]
            if call.mode == "reference":
                result = generate_reference(
                    self.bundle,
                    chunk,
                    chunk_frames,
                    call.batch_generator(),
                    call.config,
                    chunk_features,
                )
            else:
                result = generate_fast(
                    self.bundle,
                    chunk,
                    chunk_frames,
                    call.sample_generators(start, stop),
                    call.config,
                    chunk_features,
                    graphs=self.cuda_graphs,
                )
            check_finite(result["motions"], chunk, start)
            motions.extend(result["motions"])
            lengths.extend(result["lengths"])
            tokens.extend(result["tokens"])
        return motions, lengths, tokens

    def _prepare_call(self, n_texts: int, **options: Any) -> PreparedCall:
        """Check and resolve a call's settings, seed and generators against this pipeline's
        :attr:`generation_config` and device (:func:`~.prepare.prepare_call`, whose keyword
        arguments ``options`` are); ``__call__``, ``edit`` and ``generate_long`` start here."""
        return prepare_call(self.generation_config, self.device, n_texts, **options)

    # ------------------------------------------------------------------ internals that tests and
    # scripts/plot_edit.py call

    def _decode_tokens(
        self,
        token_lens: torch.Tensor,
        draws: Draws,
        config: GenerationConfig,
        text_feature: Any,
        *,
        reference: bool,
        source: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`~.decoding.decode_tokens` on this pipeline's bundle and CUDA graphs."""
        return decode_tokens(
            self.bundle,
            token_lens,
            draws,
            config,
            text_feature,
            reference=reference,
            graphs=self.cuda_graphs,
            source=source,
        )

    def _decode_motion(self, ids_aux: torch.Tensor, ids_ts: torch.Tensor) -> torch.Tensor:
        """:func:`~.decoding.decode_motion`: token ids -> normalised (B, 4T, 263) motion."""
        return decode_motion(self.bundle, ids_aux, ids_ts)
