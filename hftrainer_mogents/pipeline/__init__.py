"""The MoGenTS pipeline: text -> HumanML3D-263 motion, temporal editing and long motions.

One class, :class:`MoGenTSPipeline`, over one :class:`~hftrainer_mogents.bundle.MoGenTSBundle`;
each concern has its module:

- :mod:`.text_to_motion`: ``MoGenTSPipeline`` (loading, ``__call__`` / ``infer_t2m``);
- :mod:`.editing`: ``edit`` (token-level inpainting) and :func:`decoder_reach`;
- :mod:`.long_motion`: ``generate_long`` (windows of edits, cross-faded seams);
- :mod:`.decoding`: one batch through the transformers and the VQ decoder;
- :mod:`.prepare`: a call's settings, seed and generators (:func:`sample_seed`);
- :mod:`.inputs`: the input checks (:func:`normalize_length`);
- :mod:`.output`: :class:`MoGenTSOutput`.

``hftrainer_mogents.pipeline`` was one module until 0.x; every name imported from it then is
re-exported here.
"""

# RES_TOPK_THRES and _check_lengths: re-exported from the one-module days, for one release
from hftrainer_mogents.pipeline.decoding import RES_TOPK_THRES  # noqa: F401
from hftrainer_mogents.pipeline.editing import decoder_reach
from hftrainer_mogents.pipeline.inputs import MODES, _check_lengths, normalize_length  # noqa: F401
from hftrainer_mogents.pipeline.output import MoGenTSOutput
from hftrainer_mogents.pipeline.prepare import sample_seed
from hftrainer_mogents.pipeline.text_to_motion import MoGenTSPipeline

__all__ = [
    "MoGenTSPipeline",
    "MoGenTSOutput",
    "normalize_length",
    "sample_seed",
    "decoder_reach",
    "MODES",
]
