"""Text-to-motion evaluation: the shared metrics (:mod:`.metrics`) and one evaluator per motion
representation (:mod:`.hml263` for HumanML3D-263).

Importing this package imports nothing heavy; the evaluators import torch when they are used.
"""
