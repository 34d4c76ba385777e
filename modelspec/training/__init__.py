"""Training from a spec's ``train`` section, the model file it writes, and evaluate / predict with it.

Keras, pandas and matplotlib are imported only when the work runs, so that
importing modelspec stays light.
"""

from .fitting import TrainResult, fit
from .modelfile import load_trained, read_metadata, save_model
from .plots import write_curves, write_history
from .predict import evaluate, predict

__all__ = [
    "TrainResult",
    "evaluate",
    "fit",
    "load_trained",
    "predict",
    "read_metadata",
    "save_model",
    "write_curves",
    "write_history",
]
