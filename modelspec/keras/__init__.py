"""The Keras stage: a checked graph to a Keras model (the compiler), and a Keras model to a spec (export).

Spec values and Keras objects map both ways in :mod:`.values`; model files
are read bounded in :mod:`.archive`. Nothing here imports Keras at import
time: each part takes the ``keras`` module when it runs.
"""

from .compiler import Compiler, keras_problem, to_keras
from .messages import keras_message
from .values import Deserializer

__all__ = ["Compiler", "Deserializer", "keras_message", "keras_problem", "to_keras"]
