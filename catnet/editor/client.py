"""A minimal client of ``catnet lsp``, for the tests and the benchmark that drive the server over its real protocol.

It starts ``python -m catnet lsp`` as a subprocess, writes framed JSON-RPC
messages to its standard input and reads the server's messages on a thread,
so a caller can wait for a reply or for the diagnostics of a document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from queue import Empty, Queue
from typing import Any


class Client:
    """Framed JSON-RPC to a ``catnet lsp`` subprocess; the server's messages arrive in :attr:`inbox`."""

    def __init__(self, cwd: str | Path | None = None, env: dict[str, str] | None = None) -> None:
        root = str(Path(__file__).resolve().parent.parent.parent)
        environment = dict(os.environ if env is None else env)
        environment["PYTHONPATH"] = os.pathsep.join(p for p in (root, environment.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "catnet", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=environment)
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
            if length is None:
                return
            self.inbox.put(json.loads(out.read(length)))

    def start(self) -> Client:
        """The protocol's handshake: ``initialize``, then ``initialized``."""
        self.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        self.notify("initialized", {})
        return self

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict) -> Any:
        """Send a request and wait for its result (an error reply fails an assertion)."""
        message = self._ask(method, params)
        assert "error" not in message, message
        return message["result"]

    def refused(self, method: str, params: dict) -> dict:
        """The error a request is answered with (a refused rename); it must say why, without a traceback."""
        message = self._ask(method, params)
        assert "error" in message, message
        assert "traceback" not in json.dumps(message["error"]).lower(), message
        return message["error"]

    def _ask(self, method: str, params: dict) -> dict:
        self.ids += 1
        self.send({"id": self.ids, "method": method, "params": params})
        while True:
            message = self.next()
            if message.get("id") == self.ids and "method" not in message:
                return message

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
        """``shutdown`` and ``exit``; the process is killed if it does not end."""
        try:
            if self.proc.poll() is None:
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
