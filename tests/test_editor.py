"""The editor explains: the committed schema in the real yaml-language-server, driven over LSP.

yaml-language-server is the server behind VS Code's YAML extension (and most
other editors' YAML support). The test installs the pinned version from the npm
registry into pytest's cache on first use, starts it on stdio, opens spec text
whose first line is the README's modeline, and asks what an editor would:
hover on ``type: Dense`` and on an argument, and the diagnostics of an unknown
type. Skipped when Node.js or npm is absent or the install fails (no network).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SPECS

from modelspec import catalog

SERVER_VERSION = "1.25.0"
"""The yaml-language-server release tested (the last 1.x: 2.x asks for Node.js 22)."""
MODELINE = "# yaml-language-server: $schema=../schemas/modelspec.schema.json"
TIMEOUT = 30.0
"""Seconds any one answer from the server may take."""
SETTINGS = {"yaml": {"validate": True, "hover": True, "completion": True, "schemaStore": {"enable": False}}}

SPEC = f"""{MODELINE}
modelspec: 1
inputs:
  x: [4]
layers:
  hidden:
    type: Dense
    units: 8
    use_bias: false
  out: {{type: Dens, units: 3}}
"""


def _install(cache: Path) -> Path:
    """The server's entry point under ``cache``, installed from the npm registry if missing."""
    npm = shutil.which("npm")
    if not shutil.which("node") or not npm:
        pytest.skip("Node.js and npm are needed to run yaml-language-server")
    target = cache / f"yaml-language-server-{SERVER_VERSION}"
    entry = target / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if entry.is_file():
        return entry
    cache.mkdir(parents=True, exist_ok=True)
    # installed aside, then renamed into place: parallel runs don't clash
    staging = Path(tempfile.mkdtemp(prefix="yls-", dir=cache))
    command = [
        npm,
        "install",
        "--prefix",
        str(staging),
        "--no-audit",
        "--no-fund",
        "--fetch-retries=1",
        "--fetch-timeout=30000",
        f"yaml-language-server@{SERVER_VERSION}",
    ]
    try:
        subprocess.run(command, capture_output=True, text=True, timeout=240, check=True)
        staging.rename(target)
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        if not entry.is_file():
            detail = getattr(e, "stderr", None) or e
            pytest.skip(f"could not install yaml-language-server {SERVER_VERSION}: {str(detail)[-300:]}")
    return entry


class Server:
    """A yaml-language-server process and a minimal LSP client (JSON-RPC over stdio)."""

    def __init__(self, entry: Path) -> None:
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", str(entry), "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        try:
            while True:
                length = None
                while line := stream.readline().strip():
                    name, _, value = line.decode("ascii").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                if length is None:
                    break  # end of output
                self.messages.put(json.loads(stream.read(length)))
        finally:
            self.messages.put(None)

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        number = self.next_id
        self.send({"id": number, "method": method, "params": params})
        answer = self.wait(lambda m: m.get("id") == number and "method" not in m)
        assert "error" not in answer, answer["error"]
        return answer["result"]

    def wait(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next message ``wanted`` accepts, answering the server's own requests meanwhile."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from yaml-language-server in {TIMEOUT:.0f} s")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if message is None:
                raise EOFError(f"yaml-language-server ended (exit status {self.process.poll()})")
            if "id" in message and "method" in message:  # a request to the client
                result = None
                if message["method"] == "workspace/configuration":
                    result = [SETTINGS.get(item.get("section")) for item in message["params"]["items"]]
                self.send({"id": message["id"], "result": result})
                continue
            if message.get("method") == "textDocument/publishDiagnostics":
                self.diagnostics[message["params"]["uri"]] = message["params"]["diagnostics"]
            if wanted(message):
                return message

    def open(self, path: Path, text: str) -> list[dict[str, Any]]:
        """Open ``text`` as the (unsaved) document ``path``; its first diagnostics."""
        uri = path.as_uri()
        self.diagnostics.pop(uri, None)
        item = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": item})
        published = "textDocument/publishDiagnostics"
        self.wait(lambda m: m.get("method") == published and m["params"]["uri"] == uri)
        return self.diagnostics[uri]

    def hover(self, path: Path, text: str, line: int, word: str) -> str:
        """The hover text at the middle of ``word`` on ``line`` (0-based)."""
        column = text.splitlines()[line].index(word) + len(word) // 2
        where = {"textDocument": {"uri": path.as_uri()}, "position": {"line": line, "character": column}}
        answer = self.request("textDocument/hover", where)
        assert answer, f"no hover on {word!r}"
        contents = answer["contents"]
        return contents["value"] if isinstance(contents, dict) else str(contents)

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.request("shutdown", {})
                self.notify("exit", {})
                self.process.wait(timeout=5)
        except (OSError, ValueError, TimeoutError, EOFError, subprocess.TimeoutExpired):
            pass  # killed below
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    cache = getattr(request.config, "cache", None)  # none with -p no:cacheprovider: install for this run
    entry = _install(Path(cache.mkdir("editor")) if cache else tmp_path_factory.mktemp("editor"))
    started = Server(entry)
    try:
        started.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": ROOT.as_uri(),
                "capabilities": {"textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]}}},
            },
        )
        started.notify("initialized", {})
        started.notify("workspace/didChangeConfiguration", {"settings": SETTINGS})
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def spec(server):
    """SPEC, opened as an unsaved file in specs/ (so the modeline's relative path finds the schema)."""
    path = SPECS / "_editor_test.yaml"
    return path, server.open(path, SPEC)


def _line(word: str) -> int:
    return next(i for i, line in enumerate(SPEC.splitlines()) if word in line)


def test_hover_on_a_layer_type_shows_its_documentation(server, spec):
    path, _ = spec
    text = server.hover(path, SPEC, _line("type: Dense"), "Dense")
    assert catalog.layer("Dense").doc in text  # "Just your regular densely-connected NN layer."
    assert "`units` (required)" in text and "`use_bias`: `true`" in text  # its arguments
    assert "Conv2D" not in text and "Allowed Values" not in text  # not the list of every type
    assert len(text) < 2000


def test_hover_on_an_argument_shows_its_description_and_default(server, spec):
    path, _ = spec
    units = server.hover(path, SPEC, _line("units: 8"), "units")
    assert catalog.layer("Dense").args["units"].doc in units
    assert "Required." in units
    use_bias = server.hover(path, SPEC, _line("use_bias"), "use_bias")
    assert catalog.layer("Dense").args["use_bias"].doc in use_bias
    assert "Default: true." in use_bias


def test_an_unknown_type_gets_a_short_error(server, spec):
    _, diagnostics = spec
    assert [d["range"]["start"]["line"] for d in diagnostics] == [_line("Dens,")], diagnostics
    message = diagnostics[0]["message"]
    assert "Unknown layer type" in message
    assert len(message) < 300 and "Conv2D" not in message, message


def test_the_server_accepts_every_example(server):
    paths = sorted(SPECS.glob("*.yaml")) + sorted(SPECS.glob("blocks/*.yaml"))
    problems = {p.name: [d["message"] for d in server.open(p, p.read_text())] for p in paths}
    assert not any(problems.values()), problems
