"""Text-to-motion evaluation: the shared metrics (:mod:`.metrics`) and one evaluator per motion
representation (:mod:`.hml263` for HumanML3D-263, :mod:`.ms272` for MotionStreamer-272), both on
one base (:mod:`.base`: loading, saving, the ``evaluate`` contract, the host loop).

Importing this package imports nothing heavy; the evaluators import torch when they are used.
"""
