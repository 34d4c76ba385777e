"""The compiler stage: a checked graph to a Keras model, and spec values to Keras objects.

Nothing here imports Keras at import time: the compiler takes the ``keras``
module when it runs.
"""

from .compiler import Compiler, keras_problem, to_keras
from .messages import keras_message
from .values import Deserializer

__all__ = ["Compiler", "Deserializer", "keras_message", "keras_problem", "to_keras"]
