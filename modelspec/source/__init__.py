"""The source stage: spec text to plain data, with the location of every key and value."""

from .document import MAX_BYTES, MAX_DEPTH, MAX_NODES, Document, Source, parse, paused_gc, read_source

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "Document", "Source", "parse", "paused_gc", "read_source"]
