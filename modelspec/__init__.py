"""modelspec: declarative YAML model specs compiled to Keras models.

>>> import modelspec
>>> spec = modelspec.load("specs/iris.yaml")      # doctest: +SKIP
>>> model = modelspec.build(spec)                 # doctest: +SKIP

Importing modelspec does not import Keras or TensorFlow: only building and
training do.
"""

import gc as _gc

# Importing pydantic and building the spec models makes ~100,000 objects, none
# of them garbage: pausing the cyclic collector meanwhile takes ~15% off the
# start of every command (`modelspec validate` answers in ~2x a bare
# `import yaml, pydantic`).
_gc_was_enabled = _gc.isenabled()
_gc.disable()
try:
    from ._api import build, check, load, loads, register
    from ._errors import Problem, SpecError
    from ._spec import CompileSpec, DataSpec, InputSpec, LayerSpec, ModelSpec, TrainSpec
    from ._train import TrainResult, train
finally:
    if _gc_was_enabled:
        _gc.enable()

__version__ = "0.1.0"

__all__ = [
    "CompileSpec",
    "DataSpec",
    "InputSpec",
    "LayerSpec",
    "ModelSpec",
    "Problem",
    "SpecError",
    "TrainResult",
    "TrainSpec",
    "build",
    "check",
    "load",
    "loads",
    "register",
    "train",
]
