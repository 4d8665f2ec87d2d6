"""The hftrainer host's side of training: thin adapters over the host-free core.

Everything that computes (data, objectives, stage presets, the step's random sources, the
learning-rate factor, the gradient mean over processes, the clip) lives in the core
(:mod:`~hftrainer_mogents.training.data`, :mod:`~hftrainer_mogents.training.objectives`,
:mod:`~hftrainer_mogents.training.stages`, :mod:`~hftrainer_mogents.training.loop`); these
modules only fit it into the host's registries and runner.

| module | what it holds |
|---|---|
| :mod:`~hftrainer_mogents.training.host.trainer` | ``MoGenTSTrainer`` (``TRAINERS``): a step through :func:`~hftrainer_mogents.training.loop.forward_step`, the optimisation when the host cannot do it (clip, official schedule, several processes), ``val_step`` |
| :mod:`~hftrainer_mogents.training.host.bundle` | ``MoGenTSTrainingBundle`` (``MODEL_BUNDLES``): an artifact's bundle with a stage's roles and per-module overrides |
| :mod:`~hftrainer_mogents.training.host.datasets` | ``HumanML3DTrainDataset`` (its own keyed epoch order, see its docstring), ``HumanML3DEvalDataset`` (``DATASETS``) |
| :mod:`~hftrainer_mogents.training.host.hooks` | ``BestCheckpointHook`` (``HOOKS``): keep the best-FID checkpoint |
| :mod:`~hftrainer_mogents.training.host.runtime` | import the host, work around its runner defect, register the plugins, run a config |
| :mod:`~hftrainer_mogents.training.host.setup` | what the shipped configs' ``custom_imports`` name: importing it registers everything |

Importing this package does not import the host; ``setup`` does.
"""
