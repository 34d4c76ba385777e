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
# start of every command.
_gc_was_enabled = _gc.isenabled()
_gc.disable()
try:
    # The sweep stage first: `modelspec.sweep` is then the function imported below, not the subpackage.
    from . import sweep as _sweep_stage  # noqa: F401
    from .api import build, check, copy_weights, from_keras, load, loads, path_policy, register, sweep, train
    from .errors import Problem, SpecError
    from .spec import CompileSpec, DataSpec, InputSpec, LayerSpec, ModelSpec, TrainSpec
    from .version import __version__
finally:
    if _gc_was_enabled:
        _gc.enable()


def __getattr__(name: str) -> object:
    # TrainResult lives with training, which `modelspec validate` never imports.
    if name == "TrainResult":
        from .training import TrainResult

        return TrainResult
    raise AttributeError(f"module 'modelspec' has no attribute {name!r}")


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
    "__version__",
    "build",
    "check",
    "copy_weights",
    "from_keras",
    "load",
    "loads",
    "path_policy",
    "register",
    "sweep",
    "train",
]
