"""The package's shape: stages that import only downwards, clean lint, listed problem codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from modelspec.docs import codes_markdown
from modelspec.errors import CODES, Problem


def test_import_contracts_are_kept():
    # pyproject.toml declares the layers (cli > api > training > keras|analysis > graph > expand > spec >
    # source > catalog > errors), no cycles inside a stage, and no Keras below the compiler.
    pytest.importorskip("importlinter")
    run = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    result = subprocess.run(
        [sys.executable, "-c", run], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("KEPT") == 3, result.stdout


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_codes_are_kebab_case_with_a_meaning():
    for code, meaning in CODES.items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", code), code
        assert meaning and not meaning.endswith("."), code


def test_docs_list_every_code():
    """docs/codes.md is generated from CODES (``python -m modelspec.docs``) and kept fresh."""
    listed = (ROOT / "docs" / "codes.md").read_text(encoding="utf-8")
    assert listed == codes_markdown(), "docs/codes.md is stale: run python -m modelspec.docs"
    assert re.findall(r"^\| `([a-z-]+)` \|", listed, flags=re.MULTILINE) == list(CODES)


def test_a_problem_needs_a_listed_code():
    with pytest.raises(ValueError, match=r"not in modelspec\.errors\.CODES"):
        Problem((), "message", code="no-such-code")
    with pytest.raises(ValueError):
        Problem((), "message")


def test_ci_runs_hypothesis_derandomized():
    """Under CI (``CI`` set, as ``.ci/run`` has it) every property test draws the same examples."""
    script = (
        "import sys; sys.path.insert(0, 'tests'); import conftest; from hypothesis import settings; "
        "print(settings.default.derandomize)"
    )
    env = {**os.environ, "CI": "true"}
    env.pop("HYPOTHESIS_PROFILE", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "True"
