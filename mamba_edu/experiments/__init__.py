"""The Mamba paper's synthetic tasks (selective copying, induction heads) and their trainer (lesson 5).

``run_experiment(name, full=False, seed=0, **overrides)`` trains the selective ``MambaLM`` and its LTI
ablation (:class:`~mamba_edu.experiments.lti.LTIMambaBlock`) and returns a JSON-able dict; the
command ``mamba-edu experiment NAME`` prints it as one JSON line. Names: ``TASKS``.
"""

from mamba_edu.experiments.train import CONFIGS, TASKS, check_config, run_experiment

__all__ = ["CONFIGS", "TASKS", "check_config", "run_experiment"]
