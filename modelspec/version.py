"""The version of modelspec (written into model files and shown by ``--version``)."""

__version__ = "0.1.0"
