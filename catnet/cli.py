"""The ``catnet`` command line.

Each subcommand lives in its own module, imported only when it runs, so
``catnet check`` and ``catnet fmt`` never import JAX.  A module provides
``configure(parser)`` and ``run(args) -> int``.  Every ``CatnetError`` is
printed as a diagnostic and exits 1; Ctrl-C exits 130 without a traceback.
Commands that read ``.cat`` files take ``--root DIR``, the directory their
imports must stay in (:func:`add_root_argument`).

Every command loads the plugins (custom generators, ``catnet.extend``)
before it runs: installed packages' entry points in the group
``catnet.generators``, the modules in ``CATNET_PLUGINS``, and each
``--plugin MODULE`` (a module name or a ``.py`` path; repeatable, before
or after the command name).  A plugin that cannot load is a diagnostic and
exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from .errors import CatnetError

#: name -> (module, one-line help).  Order is the order `--help` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("catnet.cli", "type-check .cat files and list each morphism with its type"),
    "fmt": ("catnet.fmt", "print a .cat file in canonical form (or rewrite it with --write)"),
    "summary": ("catnet.summary", "table of boxes, types and parameter counts"),
    "render": ("catnet.render.cli", "draw a morphism as a string diagram (SVG, PNG, PDF, DOT, TikZ)"),
    "train": ("catnet.train", "train a morphism on data (digits, digit sets, moons, a bundle set, or an .npz file)"),
    "sample": ("catnet.sample", "draw points from a trained flow, or from the fiber over a base point"),
    "verify": ("catnet.symmetry.verify", "measure the equivariance error of each symmetry claim on the compiled model"),
    "analyze": ("catnet.analysis.cli", "intrinsic dimension and curvature of a trained model's wires, and of its loss, with plots"),
    "eval": ("catnet.use.evaluate", "score a trained model on its run's test set (the numbers training printed)"),
    "predict": ("catnet.use.predict", "run a trained model on the inputs of an .npz file, writing its outputs to an .npz"),
    "export": ("catnet.use.export", "serialize a trained model with jax.export (a symbolic batch size)"),
    "lsp": ("catnet.editor.server", "a language server for editors: diagnostics, hover, definitions, completion, formatting"),
}

EPILOG = """examples:
  catnet check examples/*.cat
  catnet fmt --write examples/digits_mlp.cat
  catnet summary examples/digits_cnn.cat
  catnet render examples/residual.cat -o residual.svg
  catnet train examples/digits_cnn.cat --data digits --epochs 10
  catnet train examples/flow_moons.cat --data moons
  catnet sample examples/flow_moons.cat --checkpoint runs/flow_moons -n 1000 -o moons.npz
  catnet verify examples/c4_digits.cat
  catnet analyze examples/digits_cnn.cat --checkpoint runs/digits_cnn --data digits -o analysis/
  catnet eval examples/digits_cnn.cat --checkpoint runs/digits_cnn
  catnet predict examples/digits_cnn.cat --checkpoint runs/digits_cnn --input x.npz -o y.npz
  catnet export examples/digits_cnn.cat --checkpoint runs/digits_cnn -o digits_cnn.jaxexport
  catnet --plugin my_generators.py check model.cat

The language is described in docs/language.md, error codes in docs/errors.md,
custom generators (--plugin MODULE, CATNET_PLUGINS) in docs/extending.md."""

PLUGIN_HELP = "load custom generators from MODULE (a module name or a .py file) first; repeatable"


def add_root_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--root DIR``, the import root, to a command that reads ``.cat`` files.

    The command passes ``args.root`` on: ``catnet.load(path, root=args.root)``
    or ``check_file(path, root=args.root)``; ``None`` (the default) means
    the directory of each file.
    """
    parser.add_argument("--root", metavar="DIR",
                        help="imports must stay inside DIR (default: the directory of the file given)")


def add_entry_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add ``--entry NAME``, the definition a command works on, under its one name for every command.

    ``--morphism`` and ``-m`` are the same option (``catnet render`` called
    it ``--morphism``, the others ``--entry``); the value is ``args.entry``.
    """
    parser.add_argument("--entry", "--morphism", "-m", dest="entry", default=None, metavar="NAME",
                        help=f"{help} (also --morphism, -m)")


def depth(text: str) -> int:
    """An argparse type for ``--depth N``: a whole number of levels, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of levels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the depth is 0 or more")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help=".cat files to check")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing when the files are fine")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (default): types on stdout, diagnostics on stderr; json: one JSON document on "
                             "stdout with every file and its diagnostics (schema in docs/errors.md)")
    add_root_argument(parser)


#: The ``schema`` of ``catnet check --format json``; it changes only when the format does.
JSON_SCHEMA = "catnet-check/1"


def run(args: argparse.Namespace) -> int:
    """`catnet check`: check every file, print types or diagnostics; 1 if any failed."""
    from .check import check_file

    if args.format == "json":
        return _run_json(args)
    failed = 0
    for path in args.files:
        try:
            module = check_file(path, root=args.root)
        except CatnetError as e:
            print(e.render(), file=sys.stderr)
            failed += 1
            continue
        if args.quiet:
            continue
        print(f"{path}: ok")
        width = max((len(n) + (len(", ".join(d.dim_params)) + 2 if d.dim_params else 0) for n, d in module.definitions.items()), default=0)
        for name, d in module.definitions.items():
            marks = []
            if name == module.entry:
                marks.append("main")
            if d.kind == "shared":
                marks.append("shared")
            if d.body is not None and d.iso and d.body.layers:
                marks.append("iso")
            if d.is_template:
                marks.append("template")
            tail = f"  [{', '.join(marks)}]" if marks else ""
            structure = f"{d.dom.structure()} -> {d.cod.structure()}"
            sig = d.signature()
            shown = sig if sig == structure else f"{sig}   ({structure})"
            params = f"[{', '.join(d.dim_params)}]" if d.dim_params else ""
            print(f"  {name + params:<{width}} : {shown}{tail}")
    if failed and len(args.files) > 1:
        print(f"{failed} of {len(args.files)} files failed", file=sys.stderr)
    return 1 if failed else 0


def _run_json(args: argparse.Namespace) -> int:
    """`catnet check --format json`: every file with its diagnostics, as one JSON document on stdout."""
    import json

    from .check import check_file

    files = []
    for path in args.files:
        try:
            module = check_file(path, root=args.root)
        except CatnetError as e:
            files.append({"file": path, "ok": False, "diagnostics": [e.to_json(path)]})
            continue
        definitions = [{"name": name, "type": d.signature()} for name, d in module.definitions.items()]
        files.append({"file": path, "ok": True, "diagnostics": [], "entry": module.entry, "definitions": definitions})
    print(json.dumps({"schema": JSON_SCHEMA, "files": files}, ensure_ascii=False, indent=2))
    return 0 if all(f["ok"] for f in files) else 1


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="catnet",
        description="String diagrams in .cat files -> checked IR -> JAX/Flax models and paper figures.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _leading_plugins(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """The ``--plugin MODULE`` options before the command name, and the rest (``None``: one lacks its MODULE)."""
    plugins: list[str] = []
    i = 0
    while i < len(argv) and (argv[i] == "--plugin" or argv[i].startswith("--plugin=")):
        if argv[i] == "--plugin":
            if i + 1 == len(argv):
                return None
            plugins.append(argv[i + 1])
            i += 2
        else:
            plugins.append(argv[i].split("=", 1)[1])
            i += 1
    return plugins, argv[i:]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    split = _leading_plugins(argv)
    if split is None:
        top.error("argument --plugin: expected one argument")
    plugins, argv = split
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    if argv[0] == "--version":
        from . import __version__

        print(f"catnet {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        top.parse_args(argv[:1])  # prints argparse's "invalid choice" and exits 2
        return 2
    module_name, text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:  # a command whose optional stage is not installed
        print(f"catnet {name}: unavailable ({e})", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(prog=f"catnet {name}", description=text)
    module.configure(parser)
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help=PLUGIN_HELP)
    args = parser.parse_args(argv[1:])
    try:
        from . import extend

        extend.load_plugins(plugins + args.plugin)  # installed, CATNET_PLUGINS, then --plugin
        return int(module.run(args) or 0)
    except CatnetError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


#: Commands that only read their input and print: nothing is left to write
#: when they return, so the process may end without tearing down its heap.
_PURE = frozenset({"check", "fmt", "summary", "render"})


def entry() -> None:
    """The ``catnet`` executable: :func:`main`, then exit.

    After a command that only reads and prints, the process ends with
    ``os._exit`` once its output is flushed: freeing the checked IR of a
    large file object by object takes longer than checking a small one
    (a quarter of a second for 10,000 definitions), and the operating system
    reclaims it at once.  ``train`` and ``sample`` do the same when they stopped before
    JAX was imported (a bad option, file or data); once one has run, it exits
    normally, so that nothing JAX or orbax still holds is cut short.
    """
    argv = sys.argv[1:]
    code = main(argv)
    split = _leading_plugins(argv)
    command = split[1][:1] if split is not None else []
    if command and (command[0] in _PURE or "jax" not in sys.modules):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            pass
        os._exit(code)
    sys.exit(code)
