"""The fine-tuning room: what training MoGenTS needs, kept apart from the inference networks.

- :mod:`~hftrainer_mogents.training.data`: a HumanML3D-format folder read and checked, and the
  datasets of the official training (64-frame windows for the VQ, captioned crops for the
  transformers), normalised with the artifact's mean/std, each item's draws keyed by
  ``(seed, epoch, index)``.
- :mod:`~hftrainer_mogents.training.objectives`: the official objectives, one per stage (VQ, mask
  and residual transformers, length estimator), drawing their random numbers from a
  :class:`~hftrainer_mogents.training.objectives.draws.Draws` (``reference`` mode: the official
  draws, in order).
- :mod:`~hftrainer_mogents.training.stages`: what each stage trains and freezes, the official
  optimiser settings and learning-rate schedule.
- :mod:`~hftrainer_mogents.training.loop`: the host-free core (a step, checkpoints, resume,
  several processes, ``fit``), which the host trainer reuses.
- the hftrainer host's side (trainer, training bundle, datasets, hooks) and the configs shipped for
  its runner.

The inference code never imports this folder; the zoo plugin registers its host classes by name.
"""
