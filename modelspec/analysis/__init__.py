"""Static analysis of a checked graph, without Keras: output shapes and parameter counts per layer.

``shapes/`` holds the shape rules, ``infer`` walks a graph with them,
``memory`` is the memory guard, ``summary`` and ``draw`` present the result.
"""

from .infer import UNKNOWN, Analysis, NodeInfo, analyze, format_shape
from .memory import available_memory, format_bytes, memory_problems, uncounted_problems

__all__ = [
    "UNKNOWN",
    "Analysis",
    "NodeInfo",
    "analyze",
    "available_memory",
    "format_bytes",
    "format_shape",
    "memory_problems",
    "uncounted_problems",
]
