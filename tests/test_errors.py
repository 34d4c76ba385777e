"""Hostile and broken specs: every mistake located, nothing executed, nothing lost.

Table-driven: each file in ``tests/cases/`` is a broken (or suspicious) spec
whose first lines say what the command line must report::

    # expect: exit=1 line=5 col=12 path=layers[0].units words=expected+an+integer,'sixty-four' hint=...

One ``# expect:`` line per expected problem. ``exit`` (the exit status),
``cmd`` (``validate``, the default, or ``build`` for errors only Keras finds)
and ``errors`` (the count on the last line) apply to the whole file; ``line``,
``col``, ``path``, ``code`` (the problem code, checked through the Python
API), ``severity`` (default ``error``), ``words`` (in the message) and
``hint`` (in the hint) describe one problem. Words are
comma-separated, ``+`` stands for a space, and they match case-insensitively.

The rest of the module covers what a case file cannot hold: files that are
missing, unreadable or too large, limits measured in time, atomic writes,
and internal errors.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field

import pytest
from conftest import CASES, HANG, SPECS

import modelspec
from modelspec.cli import main
from modelspec.source import document as _source

CASE_FILES = sorted(CASES.glob("*.yaml"))

HEADER = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<severity>error|warning): (?:(?P<path>[^\s:]+): )?(?P<message>.*)$"
)
"""The first line of a reported problem: ``file:line:column: severity: path: message`` (no path for the whole file)."""


@dataclass
class Reported:
    """One problem as the command line printed it."""

    file: str
    line: int
    col: int | None
    severity: str
    path: str
    message: str
    excerpt: list[str] = field(default_factory=list)
    hint: str = ""


def parse_report(text: str) -> tuple[list[Reported], list[str]]:
    """The problems in ``text`` (stderr of a command), and the lines that are not part of one."""
    problems: list[Reported] = []
    other: list[str] = []
    for raw in text.splitlines():
        m = HEADER.match(raw)
        if m:
            col = int(m["col"]) if m["col"] else None
            problems.append(
                Reported(m["file"], int(m["line"]), col, m["severity"], m["path"] or "", m["message"])
            )
        elif problems and raw.startswith("      hint: "):
            problems[-1].hint = raw[len("      hint: ") :]
        elif problems and re.match(r"^ *\d* \| ", raw):
            problems[-1].excerpt.append(raw)
        else:
            other.append(raw)
    return problems, other


@dataclass
class Expected:
    line: int
    col: int | None = None
    path: str | None = None
    severity: str = "error"
    words: list[str] = field(default_factory=list)
    hint: list[str] = field(default_factory=list)
    code: str | None = None

    def matches(self, p: Reported) -> bool:
        message, hint = p.message.lower(), p.hint.lower()
        return (
            p.line == self.line
            and (self.col is None or p.col == self.col)
            and (self.path is None or p.path == self.path)
            and p.severity == self.severity
            and all(w in message for w in self.words)
            and all(w in hint for w in self.hint)
        )


@dataclass
class Case:
    path: str
    exit: int = 1
    cmd: str = "validate"
    errors: int | None = None
    problems: list[Expected] = field(default_factory=list)


def _words(value: str) -> list[str]:
    return [w.replace("+", " ").lower() for w in value.split(",") if w]


TABLE = {
    # The README's example shows the file as it is, so its expectations live here.
    "README_example.yaml": [
        "exit=1 errors=3 code=wrong-argument-type line=7 col=31 path=layers.encode.units words=expected+an+integer,'sixty-four'",
        "code=unknown-reference line=8 col=46 path=layers.drop.inputs words=unknown+node,'encoded' hint='encode'",
        "code=unknown-object line=9 col=47 path=layers.label.activation words=unknown+activation,'sofmax' hint='softmax'",
    ],
}
"""Expectations of case files that do not carry them in ``# expect:`` lines."""


def read_case(path) -> Case:
    case = Case(str(path))
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    headers = [raw[len("# expect:") :] for raw in lines if raw.startswith("# expect:")]
    for raw in headers or TABLE.get(path.name, []):
        options = dict(item.split("=", 1) for item in raw.split())
        case.exit = int(options.pop("exit", case.exit))
        case.cmd = options.pop("cmd", case.cmd)
        if "errors" in options:
            case.errors = int(options.pop("errors"))
        if "line" in options:
            case.problems.append(
                Expected(
                    line=int(options.pop("line")),
                    col=int(options["col"]) if "col" in options else None,
                    path=options.get("path"),
                    severity=options.get("severity", "error"),
                    words=_words(options.get("words", "")),
                    hint=_words(options.get("hint", "")),
                    code=options.get("code"),
                )
            )
            for k in ("col", "path", "severity", "words", "hint", "code"):
                options.pop(k, None)
        assert not options, f"{path.name}: unknown expectation keys {sorted(options)}"
    return case


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def check_excerpt(p: Reported) -> None:
    """The source line is quoted under the message with a caret under the column."""
    assert len(p.excerpt) >= 1, f"no source excerpt under {p}"
    gutter = f"{p.line:>5} | "
    assert p.excerpt[0].startswith(gutter), p.excerpt
    source_line = p.excerpt[0][len(gutter) :]
    if p.col is not None and len(source_line) <= 100 and not source_line.startswith("..."):
        assert len(p.excerpt) == 2, p.excerpt
        caret = p.excerpt[1][len(gutter) :]
        assert caret.index("^") == p.col - 1, (p, p.excerpt)


def api_problems(case: Case, tmp_path) -> list[modelspec.Problem]:
    """The problems of a case through the Python API, where each carries its code."""
    from modelspec.api import load_checked

    try:
        if case.cmd == "build":
            modelspec.build(case.path)
            return list(modelspec.check(case.path).warnings)
        return list(load_checked(case.path).graph.warnings)
    except modelspec.SpecError as e:
        return e.problems


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_every_reported_problem_has_a_listed_code(path, capsys):
    from modelspec.errors import CODES

    main(["validate", "--format", "json", str(path)])
    problems = json.loads(capsys.readouterr().out)
    assert all(p["code"] in CODES for p in problems), problems


def test_there_are_enough_cases():
    assert len(CASE_FILES) >= 40


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case(path, tmp_path, capsys):
    case = read_case(path)
    assert case.problems or case.errors is not None, f"{path.name} states no expectation"
    argv = [case.cmd, str(path)]
    if case.cmd == "build":
        argv += ["-o", str(tmp_path / "model.keras")]
    code, _out, err = run_cli(argv, capsys)
    assert "Traceback" not in err and "internal error" not in err, err
    assert code == case.exit, err
    reported, other = parse_report(err)
    mine = [p for p in reported if p.file == str(path)]
    assert mine == reported, f"problems reported in another file:\n{err}"
    for expected in case.problems:
        found = [p for p in mine if expected.matches(p)]
        assert found, f"expected {expected}\nin:\n{err}"
        check_excerpt(found[0])
    coded = api_problems(case, tmp_path)
    for expected in case.problems:
        assert expected.code is not None, f"{path.name}: an expectation without code="
        assert any(
            p.line == expected.line
            and (expected.col is None or p.column == expected.col)
            and p.code == expected.code
            for p in coded
        ), (
            f"expected code {expected.code} at line {expected.line}, got {[(p.line, p.column, p.code) for p in coded]}"
        )
    errors = [p for p in mine if p.severity == "error"]
    if case.exit == 1:
        assert errors, err
        n = len(errors)
        assert other[-1] == f"{n} error{'s' if n != 1 else ''}", err  # the count comes last
    else:
        assert not errors, err
        assert not [line for line in other if line.strip()], err
        if case.cmd == "build":
            assert (tmp_path / "model.keras").is_file()
    if case.errors is not None:
        assert len(errors) == case.errors, err
    for p in mine:  # every problem, not only those expected, is located
        assert p.line >= 1 and p.col is not None, p


def test_readme_section_shows_real_output(monkeypatch, capsys):
    """The README's error report is the real output of the command it shows."""
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## When a spec is wrong") :]
    command = "$ modelspec validate tests/cases/README_example.yaml\n"
    shown = section[section.index(command) + len(command) : section.index("$ echo $?")]
    monkeypatch.chdir(ROOT)
    code, out, err = run_cli(["validate", "tests/cases/README_example.yaml"], capsys)
    assert code == 1 and "$ echo $?\n1\n" in section
    assert out + err == shown
    spec = (CASES / "README_example.yaml").read_text(encoding="utf-8")
    assert f"```yaml\n{spec}```" in section


# -- files that cannot be read ---------------------------------------------------------


def test_empty_file(tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 1
    assert f"{path}:1:1: error: the spec is empty" in err
    assert "modelspec: 1" in err  # the hint says how a spec starts


def test_missing_file_names_the_path(tmp_path, capsys):
    path = tmp_path / "nowhere" / "spec.yaml"
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 1
    assert f"{path}: error: no such file" in err
    code, _, err = run_cli(["build", str(path), "-o", str(tmp_path / "m.keras")], capsys)
    assert code == 1 and f"{path}: error" in err and "no such file" in err


def test_folder_given_as_spec(tmp_path, capsys):
    folder = tmp_path / "spec.yaml"
    folder.mkdir()
    code, _, err = run_cli(["build", str(folder), "-o", str(tmp_path / "m.keras")], capsys)
    assert code == 1
    assert f"{folder}: error: is a folder, not a spec file" in err
    with pytest.raises(modelspec.SpecError, match="is a folder"):
        modelspec.load(folder)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    with pytest.raises(modelspec.SpecError, match="not a regular file"):
        modelspec.load(fifo)


def test_permission_denied(tmp_path, capsys):
    path = tmp_path / "secret.yaml"
    path.write_text("modelspec: 1\nlayers: [{type: Dense, units: 3}]\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user (root?) reads files whatever their mode")
        code, _, err = run_cli(["validate", str(path)], capsys)
        assert code == 1
        assert f"{path}: error: permission denied" in err
    finally:
        path.chmod(0o600)


def test_permission_denied_simulated(tmp_path, capsys, monkeypatch):
    # The same path for any user: the read itself fails as it would without permission.
    path = tmp_path / "secret.yaml"
    path.write_text("modelspec: 1\nlayers: [{type: Dense, units: 3}]\n")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_source, "open", denied, raising=False)
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 1
    assert f"{path}: error: permission denied: the file cannot be read" in err


def test_invalid_utf8_is_located(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"modelspec: 1\nname: caf\xe9\n")
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 1
    assert f"{path}:2:10: error: the file is not valid UTF-8 (byte 0xe9" in err


def test_file_over_the_size_limit(tmp_path, capsys, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_text("modelspec: 1\n" + "#" * (_source.MAX_BYTES + 10) + "\n")
    start = time.perf_counter()
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert time.perf_counter() - start < HANG  # a hang guard; speed is benchmarks/bench_validate.py's
    assert code == 1
    assert f"{path}: error: the file is {path.stat().st_size:,} bytes" in err
    assert f"limited to {_source.MAX_BYTES:,} bytes" in err
    # Text given directly is bounded the same way.
    with pytest.raises(modelspec.SpecError, match="larger than"):
        modelspec.loads("#" * (_source.MAX_BYTES + 1))


@pytest.mark.parametrize(
    "text",
    [
        "modelspec: 1\nlayers: [",
        "modelspec: 1\nname: 'iris",
        "modelspec: 1\nlayers: [{type: Dense",
        "modelspec: 1\nlayers: []\n[",
        "modelspec: 1\nlayers:\n  - {type: Dense}\n  -",
    ],
)
def test_errors_at_the_end_of_a_file_without_final_newline(text):
    # PyYAML reports these past the last line; they are shown on a line that exists.
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads(text, source="cut.yaml")
    for p in info.value.problems:
        assert 1 <= p.line <= text.count("\n") + 1 and p.source_line is not None, p


def test_top_level_list_and_scalar(capsys):
    for text, got in (("- a\n- b\n", "got a list"), ("42\n", "got 42"), ("null\n", "empty")):
        with pytest.raises(modelspec.SpecError, match=got) as info:
            modelspec.loads(text, source="top.yaml")
        (problem,) = info.value.problems
        assert (problem.file, problem.line, problem.column) == ("top.yaml", 1, 1)


def test_version_2(capsys):
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads("modelspec: 2\nlayers: [{type: Dense, units: 3}]\n", source="v2.yaml")
    (problem,) = info.value.problems
    assert problem.path == ("modelspec",) and (problem.line, problem.column) == (1, 12)
    assert "unsupported format version 2" in problem.message


# -- limits, measured -------------------------------------------------------------------


def alias_bomb(levels: int = 12) -> str:
    """Each anchor is a list of ten aliases of the one before: 10**levels values once expanded."""
    lines = ["modelspec: 1", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("layers: [{type: Dense, units: 3}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_fast(write_spec, capsys):
    path = write_spec(alias_bomb())
    start = time.perf_counter()
    code, _, err = run_cli(["validate", str(path)], capsys)
    elapsed = time.perf_counter() - start
    print(f"alias bomb refused in {elapsed * 1000:.1f} ms")
    assert elapsed < HANG
    assert code == 1
    assert f"expands to more than {_source.MAX_NODES:,} values" in err
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: error:", err, re.M)


def test_alias_bomb_in_a_value_is_refused_fast():
    # The same bomb where a value is expected (a layer argument): refused while parsing.
    text = alias_bomb().replace("layers: [{type: Dense, units: 3}]", "layers: [{type: Dense, units: *a11}]")
    start = time.perf_counter()
    with pytest.raises(modelspec.SpecError, match="expands to more than"):
        modelspec.loads(text)
    assert time.perf_counter() - start < HANG  # a hang guard; speed is benchmarks/bench_validate.py's


@pytest.mark.parametrize("opening,closing", [("[", "]"), ("{a: ", "}")], ids=["lists", "mappings"])
def test_deep_nesting_is_refused_fast(opening, closing, write_spec, capsys):
    depth = 20_000
    path = write_spec(
        "modelspec: 1\nlayers: " + opening * depth + "1" * (opening == "{a: ") + closing * depth + "\n"
    )
    start = time.perf_counter()
    code, _, err = run_cli(["validate", str(path)], capsys)
    elapsed = time.perf_counter() - start
    print(f"{depth:,}-deep nesting refused in {elapsed * 1000:.1f} ms")
    assert elapsed < HANG
    assert code == 1
    assert "RecursionError" not in err
    assert f"{path}:2:" in err and f"nests deeper than {_source.MAX_DEPTH} levels" in err


def test_deep_block_nesting_is_refused():
    text = "modelspec: 1\nlayers:\n" + "".join(" " * i + "-\n" for i in range(2_000))
    with pytest.raises(modelspec.SpecError, match="nests deeper"):
        modelspec.loads(text)


def test_too_many_layers(monkeypatch):
    from modelspec.spec import convert as _spec

    entry = "{type: Dense, units: 2}"
    text = "modelspec: 1\nlayers:\n" + "".join(f"  - {entry}\n" for _ in range(_spec.MAX_LAYERS + 1))
    start = time.perf_counter()
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads(text, source="huge.yaml")
    assert time.perf_counter() - start < HANG  # parsing 100,001 entries; nothing per layer after
    (problem,) = info.value.problems
    assert problem.path == ("layers",) and problem.line == 2
    assert f"{_spec.MAX_LAYERS + 1:,} layers; at most {_spec.MAX_LAYERS:,}" in problem.message
    # The limit is checked before anything else, also when aliases make the entries.
    small = "modelspec: 1\ne: &e {type: Dense, units: 2}\nl: &l [" + ", ".join(["*e"] * 1000) + "]\n"
    monkeypatch.setattr(_spec, "MAX_LAYERS", 999)
    with pytest.raises(modelspec.SpecError, match="1,000 layers; at most 999"):
        modelspec.loads(small + "layers: *l\n")


def test_thousands_of_problems_stay_linear():
    # One problem per entry, 20,000 of them: each quotes its source line, which must not cost
    # a pass over the whole text per problem.
    n = 20_000
    text = "modelspec: 1\nlayers:\n" + "".join(
        f"  - {{type: Dense, units: {i + 1}, use_bias: 5}}\n" for i in range(n)
    )
    start = time.perf_counter()
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads(text)
    assert time.perf_counter() - start < HANG
    assert len(info.value.errors) == n


def test_huge_values_are_quoted_clipped():
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads("modelspec: 1\nlayers:\n  - {type: Dense, units: '" + "9" * 100_000 + "'}\n")
    (problem,) = info.value.problems
    assert len(problem.message) < 200 and "(100,000 characters)" in problem.message
    with pytest.raises(modelspec.SpecError) as info:  # an integer Python will not print
        modelspec.loads("modelspec: 1\nlayers:\n  - {type: Dense, units: " + "9" * 5000 + "}\n")
    assert info.value.problems[0].line == 3


def test_control_characters_never_reach_the_terminal():
    # An escape sequence in a quoted key, a bidirectional override written as is: the message
    # quotes the key escaped, and the source excerpt shows the override as '?'.
    with pytest.raises(modelspec.SpecError) as info:
        modelspec.loads('modelspec: 1\n"\\e[2J": 1\nx\u202ey: 2\nlayers: [{type: Dense, units: 3}]\n')
    report = info.value.report()
    assert "\x1b" not in report and "\u202e" not in report
    assert "unknown key '\\x1b[2J'" in report
    assert "unknown key 'x\\u202ey'" in report and "    3 | x?y: 2" in report


# -- nothing executed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tagged",
    [
        '!!python/object/apply:os.system ["touch {marker}"]',
        "!!python/object/new:subprocess.check_call [[touch, {marker}]]",
        '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
        "!!python/name:os.system",
        "!!python/module:os",
        "!<tag:yaml.org,2002:python/object/apply:os.system> [touch {marker}]",
    ],
)
def test_python_tags_never_run(tagged, tmp_path, capsys):
    marker = tmp_path / "pwned"
    text = f"modelspec: 1\nname: {tagged.format(marker=marker)}\nlayers: [{{type: Dense, units: 3}}]\n"
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 1
    assert f"{path}:2:7: error: name: the YAML tag" in err and "is not allowed" in err
    code, _, err = run_cli(["build", str(path), "-o", str(tmp_path / "m.keras")], capsys)
    assert code == 1
    assert not marker.exists()


# -- nothing lost ---------------------------------------------------------------------------


def test_failed_build_leaves_the_existing_model_untouched(tmp_path, capsys):
    out = tmp_path / "out.keras"
    original = os.urandom(4096)
    out.write_bytes(original)
    for case in ("keras_add_shape_mismatch", "bad_units_string", "yaml_unclosed_brace"):
        code, _, err = run_cli(["build", str(CASES / f"{case}.yaml"), "-o", str(out)], capsys)
        assert code == 1, err
        assert out.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.keras"]  # no temporary file left


def test_save_failing_halfway_leaves_the_existing_model_untouched(tmp_path, capsys, monkeypatch):
    import keras

    out = tmp_path / "out.keras"
    original = b"an existing model, byte for byte"
    out.write_bytes(original)

    def broken_save(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a zip")  # the writer started, then the disk filled up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    code, _, err = run_cli(["build", str(SPECS / "seed_functional.yaml"), "-o", str(out)], capsys)
    assert code == 1
    assert "No space left on device" in err and "Traceback" not in err
    assert out.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.keras"]


# -- internal errors ------------------------------------------------------------------------


def test_internal_error_is_one_line_naming_the_spec(monkeypatch, capsys):
    from modelspec import api as _api

    def broken(spec):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(_api, "to_graph", broken)
    spec = str(SPECS / "seed_functional.yaml")
    code, _out, err = run_cli(["build", spec, "-o", "unused.keras"], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert spec in lines[0] and "RuntimeError: something inside broke" in lines[0] and "--debug" in lines[0]


def test_debug_shows_the_traceback(monkeypatch, capsys):
    from modelspec import api as _api

    def broken(spec):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(_api, "to_graph", broken)
    spec = str(SPECS / "seed_functional.yaml")
    code, _, err = run_cli(["--debug", "build", spec, "-o", "unused.keras"], capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err and "RuntimeError: something inside broke" in err
    code, _, err = run_cli(["build", "--debug", spec, "-o", "unused.keras"], capsys)  # after the command too
    assert code == 1 and "Traceback (most recent call last)" in err


def test_internal_error_in_validate_names_the_spec(monkeypatch, capsys):
    from modelspec import api as _api

    def broken(spec):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(_api, "to_graph", broken)
    spec = str(SPECS / "seed_functional.yaml")
    code, _, err = run_cli(["validate", spec], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert spec in err


@pytest.mark.parametrize("where", ["inputs", "outputs"])
def test_output_index_out_of_range_is_located(where, write_spec, tmp_path, capsys):
    # LSTM with return_state has 3 outputs: index 7 does not exist.
    called_on, outputs = ('"enc[7]"', "") if where == "inputs" else ('"enc[0]"', 'outputs: ["enc[7]", out]\n')
    text = (
        "modelspec: 1\ninputs: {x: [null, 4]}\nlayers:\n"
        "  enc: {type: LSTM, units: 2, return_state: true}\n"
        f"  out: {{type: Dense, units: 2, inputs: {called_on}}}\n{outputs}"
    )
    path = write_spec(text)
    code, _, err = run_cli(["build", str(path), "-o", str(tmp_path / "m.keras")], capsys)
    assert code == 1 and "internal error" not in err, err
    assert f"{path}:{5 if where == 'inputs' else 6}:" in err


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["build", str(SPECS / "iris.yaml")])  # no -o
    assert info.value.code == 2


def test_validate_never_imports_keras_for_broken_specs():
    code = (
        "import sys; from modelspec.cli import main;"
        f"rc = main(['validate', {str(CASES)!r}]);"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'));"
        "assert rc == 1 and not heavy, heavy"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
