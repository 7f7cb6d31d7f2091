"""Recorded results of lesson 5's experiments (package data ``experiments.json``), measured while writing the course.

Each entry of :data:`RUNS`: the task, its configuration, a note on how it was measured, and the evaluation accuracy
vs training step of the LTI and the selective model (``history``), in the format of
:func:`mamba_edu.experiments.run_experiment`. Re-run on your machine with
``mamba-edu experiment selective-copying`` and ``mamba-edu experiment induction-heads``.
"""

from mamba_edu.data import load

_RECORDED = load("experiments")
RECORDED_ON = _RECORDED["recorded_on"]  # when and on what machine
RUNS = _RECORDED["runs"]  # name -> {"task", "config", "note", "history", ...}
