"""Writing generated motions to disk, the names of 0.1 (re-exported for one release): the
writers are in :mod:`hftrainer_mogents.exports`, the run and its folder in
:mod:`hftrainer_mogents.jobs.generate`."""

from __future__ import annotations

from hftrainer_mogents.exports import (
    BVH_FK_WARN_CM,  # noqa: F401  (never in __all__, importable as before)
    FORMATS,
    SMPL_FIT_WARN_MM,  # noqa: F401
    SMPL_FORMATS,
    file_names,
    load_export_model,
    parse_formats,
    save_motion,
)
from hftrainer_mogents.jobs.generate import (
    RUN_FILE,
    finished_items,
    prepare_output_dir,
    read_prompt_file,
    run_header,
    slugify,
)

__all__ = [
    "FORMATS",
    "RUN_FILE",
    "SMPL_FORMATS",
    "parse_formats",
    "load_export_model",
    "slugify",
    "save_motion",
    "read_prompt_file",
    "prepare_output_dir",
    "finished_items",
    "file_names",
    "run_header",
]
