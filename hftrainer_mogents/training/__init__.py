"""The fine-tuning room: what training MoGenTS needs, kept apart from the inference networks.

Now: :mod:`~hftrainer_mogents.training.data`, the reader of a HumanML3D-format folder and the
datasets of the official training (windows for the VQ, captioned crops for the transformers),
normalised with the artifact's mean/std.

Later (issue 20): the official objectives (VQ, mask and residual transformers, length estimator),
the host trainer and its stage presets, and the configs shipped for the host's runner.

Nothing outside this folder imports it; it may import ``config``, ``errors`` and ``utils``.
"""
