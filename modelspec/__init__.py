"""modelspec: declarative YAML model specs compiled to Keras models.

>>> import modelspec
>>> spec = modelspec.load("specs/iris.yaml")      # doctest: +SKIP
>>> model = modelspec.build(spec)                 # doctest: +SKIP

Importing modelspec does not import Keras or TensorFlow: only building and
training do.
"""

from ._api import build, check, load, loads, register
from ._errors import Problem, SpecError
from ._spec import CompileSpec, DataSpec, InputSpec, LayerSpec, ModelSpec, TrainSpec

__version__ = "0.1.0"

__all__ = [
    "CompileSpec",
    "DataSpec",
    "InputSpec",
    "LayerSpec",
    "ModelSpec",
    "Problem",
    "SpecError",
    "TrainSpec",
    "build",
    "check",
    "load",
    "loads",
    "register",
]
