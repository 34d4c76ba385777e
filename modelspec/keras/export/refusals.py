"""What a spec cannot hold, said one way whether found in a loaded model or in a model file's config."""

from __future__ import annotations

from ... import catalog


def subclassed_message(class_name: str) -> str:
    """The ``export-subclassed`` message for a model of class ``class_name`` (with its module or package)."""
    return (
        f"the model is a subclassed keras.Model ({class_name}): its layers are connected by the Python "
        "code of its call(), which a spec cannot hold; only Sequential and functional models can be exported"
    )


def refused_layer_message(name: str, class_name: str) -> str:
    """The ``export-refused-layer`` message for layer ``name`` of class ``class_name``."""
    reason = catalog.refused(class_name) or "it runs code a spec cannot hold."
    return f"layer '{name}' is a {class_name} layer, which a spec cannot hold: {reason.rstrip('.')}"
