"""The language server, driven over its real protocol: ``catnet lsp`` in a subprocess, JSON-RPC on its stdio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue

import pytest

from conftest import ROOT


class Client:
    """A minimal LSP client: framed JSON-RPC messages to the server's stdin, a reader thread on its stdout."""

    def __init__(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-m", "catnet", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
        self.inbox: Queue = Queue()
        self.ids = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert length is not None
            self.inbox.put(json.loads(out.read(length)))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict) -> object:
        self.ids += 1
        self.send({"id": self.ids, "method": method, "params": params})
        while True:
            message = self.next()
            if message.get("id") == self.ids and "method" not in message:
                assert "error" not in message, message
                return message["result"]

    def next(self, timeout: float = 60) -> dict:
        try:
            return self.inbox.get(timeout=timeout)
        except Empty:
            raise AssertionError("the server said nothing: " + self.proc.stderr.read1(4000).decode()) from None  # type: ignore[union-attr]

    def diagnostics(self, uri: str) -> list[dict]:
        """The next diagnostics published for ``uri``."""
        while True:
            message = self.next()
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return message["params"]["diagnostics"]

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=20)
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()


@pytest.fixture(scope="module")
def client():
    c = Client()
    c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    c.notify("initialized", {})
    yield c
    c.close()


def _uri(path: Path) -> str:
    return "file://" + str(path)


def _at(text: str, needle: str, nth: int = 0) -> dict:
    """The position of the ``nth`` occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start)
    return {"line": line, "character": start - (text.rfind("\n", 0, start) + 1)}


def test_a_diagnostic_appears_at_its_range_and_a_fix_clears_it(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "net.cat"
    good = "object A = R[8]\nmorphism net : A -> R[4] = dense ; relu\n"
    bad = good.replace("dense ; relu", "dense ; relu ; dense(features=3) ; softmax(axis=-1) ; nosuch")
    uri = _uri(path)
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "catnet", "version": 1, "text": bad}})
    (diag,) = client.diagnostics(uri)
    assert diag["code"] == "E0201" and diag["source"] == "catnet" and "nosuch" in diag["message"]
    assert diag["range"] == {"start": _at(bad, "nosuch"), "end": {**_at(bad, "nosuch"), "character": _at(bad, "nosuch")["character"] + 6}}
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": good}]})
    assert client.diagnostics(uri) == []


def test_hover_definition_references_completion_rename_and_formatting(client: Client, tmp_path: Path) -> None:
    (tmp_path / "lib.cat").write_text("object W = R[16]\nmorphism block : W -> W = dense ; relu\n", encoding="utf-8")
    text = ('import "lib.cat"\nobject Image = R[64]\n'
            "morphism stem : Image -> W = dense\n"
            "morphism net : Image -> W =  stem ; block ; block  # two blocks\n")
    path = tmp_path / "main.cat"
    path.write_text(text, encoding="utf-8")
    uri = _uri(path)
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "catnet", "version": 1, "text": text}})
    assert client.diagnostics(uri) == []
    doc = {"textDocument": {"uri": uri}}

    hover = client.request("textDocument/hover", {**doc, "position": _at(text, "block")})
    assert "morphism block : W -> W" in hover["contents"]["value"] and "lib.cat" in hover["contents"]["value"]
    hover = client.request("textDocument/hover", {**doc, "position": _at(text, "dense")})
    assert "generator dense" in hover["contents"]["value"]

    # into the imported file, and within this one
    (loc,) = [client.request("textDocument/definition", {**doc, "position": _at(text, "block")})]
    assert loc["uri"] == _uri(tmp_path / "lib.cat") and loc["range"]["start"]["line"] == 1
    loc = client.request("textDocument/definition", {**doc, "position": _at(text, "stem", 1)})
    assert loc["uri"] == uri and loc["range"]["start"]["line"] == 2

    refs = client.request("textDocument/references", {**doc, "position": _at(text, "stem"), "context": {"includeDeclaration": True}})
    assert sorted(r["range"]["start"]["line"] for r in refs) == [2, 3]

    items = client.request("textDocument/completion", {**doc, "position": {"line": 3, "character": 0}})
    labels = {i["label"] for i in items["items"]}
    assert {"stem", "net", "block", "Image", "W", "dense", "attention", "repeat", "morphism"} <= labels

    edit = client.request("textDocument/rename", {**doc, "position": _at(text, "stem"), "newName": "trunk"})
    assert len(edit["changes"][uri]) == 2 and all(e["newText"] == "trunk" for e in edit["changes"][uri])

    symbols = client.request("textDocument/documentSymbol", doc)
    assert [s["name"] for s in symbols] == ["Image", "stem", "net"]

    (change,) = client.request("textDocument/formatting", {**doc, "options": {"tabSize": 2, "insertSpaces": True}})
    assert "=  stem" not in change["newText"] and "stem ; block ; block" in change["newText"]


def test_the_examples_check_clean(client: Client) -> None:
    for path in sorted((ROOT / "examples").glob("*.cat"))[:4]:
        uri = _uri(path)
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "catnet", "version": 1,
                                                                "text": path.read_text(encoding="utf-8")}})
        assert client.diagnostics(uri) == [], path.name
