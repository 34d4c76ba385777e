"""The graph stage: a spec to a resolved, ordered, checked graph; its lint checks and its walker."""

from .build import model_name, to_graph
from .lint import lint
from .model import Graph, Input, Node, Ref, Refs, flatten
from .walk import resolve, walk

__all__ = [
    "Graph",
    "Input",
    "Node",
    "Ref",
    "Refs",
    "flatten",
    "lint",
    "model_name",
    "resolve",
    "to_graph",
    "walk",
]
