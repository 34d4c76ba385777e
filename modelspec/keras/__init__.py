"""The compiler stage: a checked graph to a Keras model, and spec values to Keras objects.

Nothing here imports Keras at import time: the compiler takes the ``keras``
module when it runs.
"""

from .compiler import Compiler, keras_message, keras_problem, to_keras
from .objects import Objects

__all__ = ["Compiler", "Objects", "keras_message", "keras_problem", "to_keras"]
