"""Libraries: the files a spec imports, and the blocks they hold (names, cycles, lookup)."""

from __future__ import annotations

import os
from typing import Any

from .. import catalog
from ..errors import Origin, SpecError
from ..order import depth_first
from ..source import Source, read_source
from ..spec import BlockSpec, to_spec
from ..spec.paths import current_policy, is_outside, outside_problem
from .state import MAX_IMPORT_DEPTH, Base, Library


class Libraries(Base):
    """Imported files loaded once each, and blocks found by name in a file's scope."""

    def imports(self, root: Library) -> None:
        """Load the files the spec imports, and theirs, each once, confined as the spec's other paths are.

        An import is read at its real location (symbolic links followed), so a file reached by
        two names, or through a folder link that leads back (``loop -> .``), is one file: a
        cycle is found and named as one. A path leading outside the spec's folder and the
        working folder is refused before it is read (``path-outside``, unless allowed).
        """
        start = self.real_file() or "<spec>"
        libraries = {start: root}
        written: dict[tuple[str, str], tuple[Origin, str]] = {}  # (importer, imported) -> the import entry

        def needs(key: str) -> list[str]:
            lib = libraries[key]
            found = []
            for alias, relative in lib.spec.imports.items():
                at = lib.at("imports", alias)
                path = self.import_path(lib, relative, at)
                if path is None:
                    continue
                written.setdefault((key, path), (at, relative))
                if path not in libraries:
                    loaded = self.load(path, relative, at)
                    if loaded is None:
                        continue
                    libraries[path] = self.loaded[path] = loaded
                lib.imports[alias] = libraries[path]
                found.append(path)
            return found

        def cycle(keys: list[str]) -> None:
            at, relative = written[(keys[-2], keys[-1])]
            names = " -> ".join(os.path.basename(k) for k in keys)
            lib = libraries[keys[-2]]
            base = lib.doc.base_dir if lib.doc is not None else os.getcwd()
            linked = os.path.abspath(os.path.join(base, relative)) != keys[-1]
            hint = f"'{relative}' is {keys[-1]}, through a symbolic link" if linked else None
            self.error(at, "import-cycle", f"the imports go round in a circle: {names}", hint)

        def too_deep(path: list[str], key: str) -> None:
            at = written[(path[-1], key)][0]
            self.error(
                at, "expand-limit", f"imports nest deeper than {MAX_IMPORT_DEPTH} files",
                "import the blocks you need from fewer levels of files",
            )  # fmt: skip

        depth_first([start], needs, on_cycle=cycle, max_depth=MAX_IMPORT_DEPTH, on_too_deep=too_deep)

    def real_file(self) -> str | None:
        """The spec's own file at its real location; None for a spec made in Python or from a string."""
        source = self.spec.source
        if not isinstance(source, Source) or source.name.startswith("<"):
            return None
        return os.path.realpath(source.name)

    def import_path(self, lib: Library, relative: str, at: Origin) -> str | None:
        """The real path an import names, or None when it is refused (the problem recorded)."""
        if os.path.isabs(relative) or "://" in relative:
            self.error(at, "import-file", f"imports are files relative to this one, got {relative!r}")
            return None
        base = lib.doc.base_dir if lib.doc is not None else os.getcwd()
        path = os.path.realpath(os.path.join(base, relative))
        if not current_policy().allow_outside and is_outside(self.spec, path):
            self.problems.append(outside_problem(at, relative, path))
            return None
        return path

    def load(self, path: str, relative: str, at: Origin) -> Library | None:
        """The library in the file at ``path``, or None when it cannot be read (the problem recorded)."""
        try:
            source = read_source(path)
        except SpecError as e:
            self.error(at, "import-file", f"cannot import {relative!r}: {e.problems[0].message}")
            return None
        spec, problems = to_spec(source, self.custom)
        self.problems += problems
        if spec is None:
            return None
        return Library(spec, source, dict(spec.params))

    def check_blocks(self, root: Library) -> None:
        """Block names that shadow layer types, and blocks that use themselves (through others or not).

        Leaves the blocks in :attr:`block_order`, each after the blocks it uses.
        """
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
        names = {(id(lib), n): (lib, n) for lib in libraries for n in lib.spec.blocks}

        def uses(key: tuple[int, str]) -> list[tuple[int, str]]:
            lib, name = names[key]
            block = lib.spec.blocks[name]
            entries = block.layers.values() if isinstance(block.layers, dict) else block.layers
            found = []
            for entry in entries:
                if entry is not None and isinstance(entry.block, str) and "${" not in entry.block:
                    target = self.find_block(entry.block, lib)
                    if target is not None:
                        found.append((id(target[1]), entry.block.rsplit(".", 1)[-1]))
            return [k for k in found if k in names]

        def cycle(keys: list[tuple[int, str]]) -> None:
            lib, name = names[keys[-1]]
            self.error(
                lib.at("blocks", name),
                "block-cycle",
                f"the blocks use each other in a circle: {' -> '.join(names[k][1] for k in keys)}",
                key=True,
            )

        self.block_order = [names[k] for k in depth_first(names, uses, on_cycle=cycle)]

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
