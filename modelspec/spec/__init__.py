"""The spec stage: a parsed document to a validated :class:`ModelSpec`, checked against the catalog."""

from .checks import check_spec
from .convert import attach_origins, to_spec
from .models import (
    DISTRIBUTIONS,
    FORMAT_VERSION,
    BlockSpec,
    CompileSpec,
    DataSpec,
    InputSpec,
    LayerSpec,
    ModelSpec,
    TrainSpec,
    holds_expression,
    per_output,
    split_reference,
)

__all__ = [
    "DISTRIBUTIONS",
    "FORMAT_VERSION",
    "BlockSpec",
    "CompileSpec",
    "DataSpec",
    "InputSpec",
    "LayerSpec",
    "ModelSpec",
    "TrainSpec",
    "attach_origins",
    "check_spec",
    "holds_expression",
    "per_output",
    "split_reference",
    "to_spec",
]
