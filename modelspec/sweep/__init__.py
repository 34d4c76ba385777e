"""Sweeps: search a spec's params, variants and training settings with Optuna.

A stage above training: each trial is the spec with a sampled point written
in, checked statically like any spec (an impossible point fails without
training), then trained by :mod:`modelspec.training` with per-epoch reports
for pruning. Optuna is imported when a sweep runs, never to check a spec.
"""

from .runner import Sweep, SweepInterrupted, SweepResult, plan, run
from .trial import Pipeline

__all__ = ["Pipeline", "Sweep", "SweepInterrupted", "SweepResult", "plan", "run"]
