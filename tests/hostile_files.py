"""Hostile cases for files, imports, lines, excerpts and the parser's bounds.

Each case is one input of issue 7 ("Tracebacks", "Reading outside the import
root", "Wrong excerpts", the FIFO and ``/dev/zero`` hangs) run through the
real command line; see ``tests/hostile.py`` for what every case must keep.
"""

from __future__ import annotations

import os
from pathlib import Path

from hostile import Case

#: A chain longer than the parser's nesting bound (``MAX_NESTING``).
CHAIN = 1000


def _write(d: Path, name: str, text: str) -> str:
    (d / name).write_text(text, encoding="utf-8")
    return name


# -- chains that nest the AST: refused by the parser, in `check` and in `fmt` --


def _size_chain(d: Path) -> str:
    return _write(d, "sizes.cat", "object A = R[" + " + ".join(["1"] * CHAIN) + "]\nmorphism f : A -> A = relu\n")


def _repeat_chain(d: Path) -> str:
    return _write(d, "repeat.cat", "object A = R[4]\nmorphism f : A -> A = " + "repeat 2 " * CHAIN + "relu\n")


def _wire_chain(d: Path) -> str:
    body = " + ".join(["x"] * CHAIN)
    return _write(d, "wires.cat", f"morphism f(x : R[4]) -> R[4] {{\n  return {body}\n}}\n")


def _argument_sum(d: Path) -> str:
    return _write(d, "args.cat", "morphism f : R[4] -> R[4] = dense(features=" + " + ".join(["1"] * CHAIN) + ")\n")


def _chain_cases() -> list[Case]:
    cases = []
    for name, make, line in (("size-chain", _size_chain, 1), ("repeat-chain", _repeat_chain, 2),
                             ("wire-plus-chain", _wire_chain, 2), ("argument-sum", _argument_sum, 1)):
        for command in ("check", "fmt"):
            cases.append(Case(f"files-{name}-{command}", lambda d, make=make, command=command: [command, make(d)],
                              "E0106", contains=(f":{line}:", "nested too deeply")))
    return cases


def _long_number(d: Path) -> list[str]:
    return ["check", _write(d, "number.cat", "object A = R[" + "9" * 4301 + "]\nmorphism f : A -> A = relu\n")]


# -- imports: the root, paths the system refuses, long chains -------------------


def _main_importing(d: Path, path: str) -> list[str]:
    return ["check", _write(d, "main.cat", f'import "{path}"\nmorphism f : R[4] -> R[4] = relu\n')]


def _name_too_long(d: Path) -> list[str]:
    return _main_importing(d, "x" * 300 + ".cat")


def _symlink_loop(d: Path) -> list[str]:
    os.symlink("loop.cat", d / "loop.cat")
    return _main_importing(d, "loop.cat")


def _import_chain(n: int):  # noqa: ANN202 - a setup function
    def setup(d: Path) -> list[str]:
        for i in range(n):
            head = f'import "f{i + 1}.cat"\n' if i + 1 < n else "object A = R[4]\n"
            _write(d, f"f{i}.cat", f"{head}morphism m{i} : A -> A = relu\n")
        return ["check", "-q", "f0.cat"]

    return setup


def _etc_passwd(d: Path) -> list[str]:
    return _main_importing(d, "/etc/passwd")


def _proc_environ(d: Path) -> list[str]:
    return _main_importing(d, "/proc/self/environ")


def _dotdot(d: Path) -> list[str]:
    (d / "secret.cat").write_text("object Secret = R[4]\n", encoding="utf-8")
    (d / "project").mkdir()
    return ["check", "project/" + _write(d / "project", "main.cat", 'import "../secret.cat"\nmorphism f : R[4] -> R[4] = relu\n')]


def _dotdot_with_root(d: Path) -> list[str]:
    args = _dotdot(d)
    return [args[0], "--root", ".", *args[1:]]


def _render_dotdot(d: Path) -> list[str]:
    return ["render", _dotdot(d)[1]]


def _symlink_outside(d: Path) -> list[str]:
    (d / "outside").mkdir()
    (d / "outside" / "lib.cat").write_text("object Secret = R[4]\n", encoding="utf-8")
    (d / "project").mkdir()
    os.symlink("../outside/lib.cat", d / "project" / "lib.cat")
    return ["check", "project/" + _write(d / "project", "main.cat", 'import "lib.cat"\nmorphism f : Secret -> Secret = relu\n')]


def _fifo_main(d: Path) -> list[str]:
    os.mkfifo(d / "pipe.cat")
    return ["check", "pipe.cat"]


def _fifo_import(d: Path) -> list[str]:
    os.mkfifo(d / "pipe.cat")
    return _main_importing(d, "pipe.cat")


def _dev_zero_main(d: Path) -> list[str]:
    return ["check", "/dev/zero"]


def _dev_zero_import(d: Path) -> list[str]:
    # With the whole file system as the root, the path is allowed; the
    # device is refused for what it is.
    args = _main_importing(d, os.path.relpath("/dev/zero", os.path.realpath(d)))
    return [args[0], "--root", "/", *args[1:]]


def _directory_main(d: Path) -> list[str]:
    (d / "dir.cat").mkdir()
    return ["check", "dir.cat"]


def _directory_import(d: Path) -> list[str]:
    (d / "lib").mkdir()
    return _main_importing(d, "lib")


def _passwd_inside(d: Path) -> list[str]:
    # A file that is not .cat inside the root: only its offending line shows.
    _write(d, "passwd.cat", "root:x:0:0:root:/root:/bin/bash\nsecond:x:1:1:second-line-secret:/x:/bin/sh\n")
    return _main_importing(d, "passwd.cat")


# -- lines and excerpts --------------------------------------------------------------


def _escape_in_string(d: Path) -> list[str]:
    return ["check", _write(d, "esc.cat", 'morphism f : R[4] -> R[4] = dense(features="\x1b[31mred\x07")\n')]


def _form_feed(d: Path) -> list[str]:
    return ["check", _write(d, "ff.cat", "object V = R[4]  # a\x0cb\x0bc\x1cd\x85e\u2028f\nmorphism f : V -> V = rleu\n")]


def _cr_only(d: Path) -> list[str]:
    (d / "cr.cat").write_bytes(b"# one\robject V = R[4]\rmorphism f : V -> V = rleu\r")
    return ["check", "cr.cat"]


SECRET = "CATNET_HOSTILE_SECRET"

CASES = [
    *_chain_cases(),
    Case("files-number-4301-digits", _long_number, "E0307", contains=("number.cat:1:14:", "4,301 characters")),
    Case("files-import-name-too-long", _name_too_long, "E0203", contains=("main.cat:1:1:", "longer than the system")),
    Case("files-import-symlink-loop", _symlink_loop, "E0001", contains=("main.cat:1:1:", "loop")),
    Case("files-import-chain-500", _import_chain(500), None, status=0),
    Case("files-import-etc-passwd", _etc_passwd, "E0004", contains=("main.cat:1:1:",), absent=("root:x:0",)),
    Case("files-import-proc-environ", _proc_environ, "E0004", contains=("main.cat:1:1:",),
         absent=(SECRET, "PATH="), env={SECRET: "hunter2"}),
    Case("files-import-dotdot", _dotdot, "E0004", contains=("project/main.cat:1:1:", "--root")),
    Case("files-import-dotdot-with-root", _dotdot_with_root, None, status=0),
    Case("files-render-import-dotdot", _render_dotdot, "E0004", contains=("project/main.cat:1:1:",)),
    Case("files-import-symlink-outside", _symlink_outside, "E0004", contains=("project/main.cat:1:1:", "symbolic link")),
    Case("files-fifo-main", _fifo_main, "E0001", contains=("pipe.cat:1:1:", "named pipe")),
    Case("files-fifo-import", _fifo_import, "E0001", contains=("main.cat:1:1:", "named pipe")),
    Case("files-dev-zero-main", _dev_zero_main, "E0001", contains=("/dev/zero:1:1:", "device")),
    Case("files-dev-zero-import", _dev_zero_import, "E0001", contains=("main.cat:1:1:", "device")),
    Case("files-directory-main", _directory_main, "E0001", contains=("dir.cat:1:1:", "directory")),
    Case("files-directory-import", _directory_import, "E0001", contains=("main.cat:1:1:", "directory")),
    Case("files-import-not-cat-inside-root", _passwd_inside, "E0101",
         contains=("passwd.cat:1:", "1 | root:x:0"), absent=("second-line-secret",)),
    Case("files-escape-in-string", _escape_in_string, "E0208", contains=("esc.cat:1:", "\\x1b[31mred\\x07"),
         absent=("\x1b", "\x07")),
    Case("files-form-feed-comment", _form_feed, "E0201",
         contains=("ff.cat:2:23:", "2 | morphism f : V -> V = rleu\n  |                       ^^^^")),
    Case("files-cr-only-lines", _cr_only, "E0201",
         contains=("cr.cat:3:23:", "3 | morphism f : V -> V = rleu\n  |                       ^^^^")),
]
