"""Static analysis of a checked graph, without Keras: output shapes and parameter counts per layer."""

from .infer import (
    UNKNOWN,
    Analysis,
    NodeInfo,
    analyze,
    available_memory,
    format_bytes,
    format_shape,
    memory_problems,
)

__all__ = [
    "UNKNOWN",
    "Analysis",
    "NodeInfo",
    "analyze",
    "available_memory",
    "format_bytes",
    "format_shape",
    "memory_problems",
]
