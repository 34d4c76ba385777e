"""Libraries: the files a spec imports, and the blocks they hold (names, cycles, lookup)."""

from __future__ import annotations

import os
from typing import Any

from .. import catalog
from ..errors import Origin, SpecError
from ..source import read_source
from ..spec import BlockSpec, to_spec
from .state import Base, Library


class Libraries(Base):
    """Imported files loaded once each, and blocks found by name in a file's scope."""

    def imports(self, lib: Library, stack: tuple[str, ...]) -> None:
        base = lib.doc.base_dir if lib.doc is not None else os.getcwd()
        for alias, relative in lib.spec.imports.items():
            at = lib.at("imports", alias)
            if os.path.isabs(relative) or "://" in relative:
                self.error(at, "import-file", f"imports are files relative to this one, got {relative!r}")
                continue
            path = os.path.abspath(os.path.join(base, relative))
            if path in stack:
                cycle = " -> ".join(os.path.basename(p) for p in (*stack[stack.index(path) :], path))
                self.error(at, "import-cycle", f"the imports go round in a circle: {cycle}")
                continue
            if path in self.loaded:
                lib.imports[alias] = self.loaded[path]
                continue
            try:
                source = read_source(path)
            except SpecError as e:
                self.error(at, "import-file", f"cannot import {relative!r}: {e.problems[0].message}")
                continue
            spec, problems = to_spec(source, self.custom)
            self.problems += problems
            if spec is None:
                continue
            sub = Library(spec, source, dict(spec.params))
            self.loaded[path] = lib.imports[alias] = sub
            self.imports(sub, (*stack, path))

    def check_blocks(self, root: Library) -> None:
        """Block names that shadow layer types, and blocks that use themselves (through others or not)."""
        libraries = [root, *self.loaded.values()]
        for lib in libraries:
            for name in lib.spec.blocks:
                if (
                    catalog.layer(name) is not None
                    or catalog.refused(name) is not None
                    or name in self.custom
                ):
                    self.error(
                        lib.at("blocks", name), "block-name",
                        f"the block name {name!r} is a Keras layer type: an entry could not say which it means",
                        f"rename the block, e.g. '{name[0].lower()}{name[1:]}_block'", key=True,
                    )  # fmt: skip
        edges: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for lib in libraries:
            for name, block in lib.spec.blocks.items():
                entries = block.layers.values() if isinstance(block.layers, dict) else block.layers
                targets = []
                for entry in entries:
                    if entry is not None and isinstance(entry.block, str) and "${" not in entry.block:
                        found = self.find_block(entry.block, lib)
                        if found is not None:
                            targets.append((id(found[1]), found[1], entry.block.rsplit(".", 1)[-1]))
                edges[(id(lib), name)] = [(i, n) for i, _, n in targets]
                for _, target_lib, _ in targets:
                    edges.setdefault((id(target_lib), "#lib"), [])
        names = {(id(lib), n): (lib, n) for lib in libraries for n in lib.spec.blocks}
        state: dict[tuple, int] = {}
        for start in names:
            stack = [(start, iter(edges.get(start, [])))]
            trail = [start]
            state[start] = state.get(start, 0) or 1
            if state[start] == 2:
                continue
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    trail.pop()
                    state[node] = 2
                    continue
                if state.get(nxt) == 1:
                    cycle = [names[n][1] for n in trail[trail.index(nxt) :]] + [names[nxt][1]]
                    lib, name = names[nxt]
                    self.error(
                        lib.at("blocks", name),
                        "block-cycle",
                        f"the blocks use each other in a circle: {' -> '.join(cycle)}",
                        key=True,
                    )
                    continue
                if state.get(nxt) == 2 or nxt not in names:
                    continue
                state[nxt] = 1
                trail.append(nxt)
                stack.append((nxt, iter(edges.get(nxt, []))))

    def find_block(self, name: str, lib: Library) -> tuple[BlockSpec, Library] | None:
        if "." in name:
            alias, _, bare = name.partition(".")
            target = lib.imports.get(alias)
            if target is None or bare not in target.spec.blocks:
                return None
            return target.spec.blocks[bare], target
        block = lib.spec.blocks.get(name)
        return (block, lib) if block is not None else None

    def block(self, name: Any, lib: Library, at: Origin) -> tuple[BlockSpec, Library]:
        found = self.find_block(name, lib) if isinstance(name, str) else None
        if found is None:
            known = [
                *lib.spec.blocks,
                *(f"{a}.{b}" for a, sub in lib.imports.items() for b in sub.spec.blocks),
            ]
            alias = name.partition(".")[0] if isinstance(name, str) and "." in name else None
            if alias is not None and alias not in lib.imports:
                message = f"unknown import {alias!r} in the block name {name!r}"
            else:
                message = f"unknown block {name!r}"
            raise self.fail(
                at,
                "unknown-block",
                message,
                self.near.hint(
                    str(name), known, f"blocks:{id(lib)}", f"the blocks are: {', '.join(known) or 'none'}"
                ),
            )
        return found
