"""The package's long-running jobs, each over the one job runner
(:mod:`hftrainer_mogents.utils.runner`: shards, verified resume, chunks, atomic writes, a
summary):

- :mod:`~hftrainer_mogents.jobs.bridge`: the bridge's batch jobs (``run_ik``, ``run_272``,
  ``run_bridge``, ``make_bridged_reference``).
- :mod:`~hftrainer_mogents.jobs.generate`: a generation run written to a folder
  (``generate_run``; ``mogents generate``, ``mogents edit``, ``mogents generate --sequence``).

The third job, the HumanML3D test-split generation
(:func:`~hftrainer_mogents.evaluation.hml263.split_generation.generate_test_split`), lives with
the evaluation that plans and scores it: ``evaluation/`` may not import this folder, which
reaches it back through ``motion/``.
"""
