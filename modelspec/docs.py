"""Generated reference pages: ``python -m modelspec.docs`` writes ``docs/codes.md`` (a test keeps it fresh)."""

from __future__ import annotations

import pathlib
import sys

from .errors import CODES


def codes_markdown() -> str:
    """The table of problem codes as Markdown, from :data:`modelspec.errors.CODES`."""
    rows = "".join(f"| `{code}` | {meaning} |\n" for code, meaning in CODES.items())
    return (
        "# Problem codes\n\n"
        "Every problem modelspec reports carries one of these stable codes: `--format json` shows it\n"
        '(`"code"`), `--format github` puts it in the annotation\'s title, and Python has it as\n'
        "`Problem.code`. Scripts and editors can key on it instead of on the English message.\n\n"
        "Generated from `modelspec.errors.CODES` by `python -m modelspec.docs`.\n\n"
        "| code | meaning |\n| --- | --- |\n" + rows
    )


def main(root: pathlib.Path) -> None:
    """Write every generated page under ``root/docs``."""
    (root / "docs" / "codes.md").write_text(codes_markdown(), encoding="utf-8")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path.cwd())
