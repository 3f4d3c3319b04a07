"""The language server, driven over its real protocol: ``catnet lsp`` in a subprocess, JSON-RPC on its stdio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from catnet.editor.client import Client


@pytest.fixture(scope="module")
def client():
    c = Client(cwd=ROOT).start()
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


def _open(client: Client, path: Path) -> tuple[str, str]:
    """Open ``path`` in the server as it is on disk; it must check clean.  Its URI and text."""
    uri, text = _uri(path), path.read_text(encoding="utf-8")
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "catnet", "version": 1, "text": text}})
    assert client.diagnostics(uri) == [], path.name
    return uri, text


def _hover(client: Client, uri: str, position: dict) -> str | None:
    answer = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": position})
    return None if answer is None else answer["contents"]["value"]


def test_hover_gives_the_box_the_wire_or_the_sub_diagram_under_the_cursor(client: Client) -> None:
    uri, text = _open(client, ROOT / "examples" / "transformer.cat")

    # a generator's box as checked there: its shapes, its arguments, its parameters, then the generator
    hover = client.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": _at(text, "dense : Stream")})
    value = hover["contents"]["value"]
    assert "dense(features=256) : R[T, 64] -> R[T, 256]" in value and "parameters: 16,640" in value
    assert "`Stream -> R[T, 256]`" in value and "generator dense" in value
    start = _at(text, "dense : Stream")
    assert hover["range"] == {"start": start, "end": {**start, "character": start["character"] + 5}}
    value = _hover(client, uri, _at(text, "heads=4"))  # an argument of a call: the call's box
    assert value is not None and "attention(causal=true, heads=4) : R[T, 64] -> R[T, 64]" in value

    # a use of a definition: the box there, then the definition
    value = _hover(client, uri, _at(text, "mlp(layernorm"))
    assert value is not None and "mlp : R[T, 64] -> R[T, 64]" in value and "parameters: 33,088" in value
    assert "morphism mlp : Stream -> Stream" in value
    value = _hover(client, uri, _at(text, "repeat 4 block"))
    assert value is not None and "repeat 4 block : R[T, 64] -> R[T, 64]" in value and "parameters: 199,936" in value

    # wires of the wiring form: a parameter and an assigned wire
    assert _hover(client, uri, _at(text, "x + attention")) == "```catnet\nwire x : Stream\n```\n\n`R[T, 64]`"
    assert "wire h : Stream" in (_hover(client, uri, _at(text, "h + mlp")) or "")

    # `;`: the composite around it; names keep their own hover
    value = _hover(client, uri, _at(text, "; gelu"))
    assert value is not None and ": R[T, 64] -> R[T, 64]" in value
    assert "morphism mlp : Stream -> Stream" in (_hover(client, uri, _at(text, "mlp :")) or "")
    assert "object Stream = R[T, 64]" in (_hover(client, uri, _at(text, "Stream -> Stream")) or "")

    # nothing in a comment, past the end, or between declarations
    assert _hover(client, uri, _at(text, "token ids")) is None
    assert _hover(client, uri, {"line": 999, "character": 0}) is None
    assert _hover(client, uri, {"line": 0, "character": 999}) is None
    assert _hover(client, uri, {"line": text.count("\n", 0, text.index("morphism mlp")) - 1, "character": 0}) is None

    # a template's body, as its first instance checked it; `⊗` with an `id`, typed by its neighbours
    uri, text = _open(client, ROOT / "examples" / "residual.cat")
    body = text.index("copy ; (f")
    value = _hover(client, uri, _at(text, "⊗", text.count("⊗", 0, body)))
    assert value is not None and "f ⊗ id : R[128] ⊗ R[128] -> R[128] ⊗ R[128]" in value
    value = _hover(client, uri, _at(text, "dense : R[d]"))  # a size the definition leaves open
    assert value is not None and "R[d] -> R[d * 4]" in value and "parameters: depend on sizes" in value


def test_completion_offers_a_calls_keyword_arguments(client: Client) -> None:
    uri, text = _open(client, ROOT / "examples" / "transformer.cat")
    doc = {"textDocument": {"uri": uri}}

    def labels(position: dict) -> dict[str, str | None]:
        items = client.request("textDocument/completion", {**doc, "position": position})["items"]
        return {i["label"]: i.get("detail") for i in items}

    inside = _at(text, ")\n  return")  # after `causal=true`, still in `attention(`
    found = labels(inside)
    assert found["dropout="] == "float = 0.0" and "heads=" not in found and "causal=" not in found
    assert "dense" in found and "mlp" in found  # the other items stay
    found = labels(_at(text, "vocab=256"))
    assert "vocab=" in found and "features=" in found
    found = labels({"line": text.count("\n", 0, text.index("main encoder")), "character": 0})
    assert "dropout=" not in found and {"dense", "block", "Stream", "morphism"} <= set(found)
    assert labels(_at(text, "token ids")) == {}  # in a comment

    uri, text = _open(client, ROOT / "examples" / "residual.cat")
    items = client.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": _at(text, "branch)")})
    (param,) = [i for i in items["items"] if i["label"] == "f="]
    assert param["detail"] == "R[d] -> R[d]" and param["insertText"] == "f="


def test_references_and_rename_cross_imports(client: Client, tmp_path: Path) -> None:
    (tmp_path / "lib.cat").write_text((ROOT / "examples" / "residual.cat").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "main.cat").write_text(
        'import "lib.cat"\n\n# a deeper net of the same blocks\n'
        "morphism deep : Image -> Logits =\n  dense ; relu ; (repeat 8 block : Width -> Width) ; layernorm ; dense\n\n"
        "morphism wide : Width -> Width = residual(branch) ; block\n", encoding="utf-8")
    main, main_text = _open(client, tmp_path / "main.cat")
    lib, lib_text = _uri(tmp_path / "lib.cat"), (tmp_path / "lib.cat").read_text(encoding="utf-8")
    lib_block = sorted(_at(lib_text, "block", i)["line"] for i in range(lib_text.count("block"))
                       if "#" not in lib_text.splitlines()[_at(lib_text, "block", i)["line"]])

    def refs(uri: str, position: dict, declaration: bool = True) -> dict[str, list[int]]:
        found = client.request("textDocument/references", {"textDocument": {"uri": uri}, "position": position,
                                                           "context": {"includeDeclaration": declaration}})
        out: dict[str, list[int]] = {}
        for loc in found:
            out.setdefault(loc["uri"], []).append(loc["range"]["start"]["line"])
        return {k: sorted(v) for k, v in out.items()}

    # from the importing file: the declaration and uses in the imported one (not yet open) too
    where = refs(main, _at(main_text, "block :"))
    assert where == {main: [4, 6], lib: lib_block}
    declared_at = _at(lib_text, "morphism block")["line"]
    assert refs(main, _at(main_text, "block :"), declaration=False)[lib] == [n for n in lib_block if n != declared_at]

    # and from the imported file, once open, the open documents that import it
    _open(client, tmp_path / "lib.cat")
    assert refs(lib, _at(lib_text, "block :")) == where
    assert refs(lib, _at(lib_text, "resnet :")) == {lib: [18, 21]}

    edit = client.request("textDocument/rename", {"textDocument": {"uri": main}, "position": _at(main_text, "block :"),
                                                  "newName": "unit"})
    assert set(edit["changes"]) == {main, lib}
    assert [e["range"]["start"]["line"] for e in edit["changes"][main]] == [4, 6]
    assert len(edit["changes"][lib]) == len(lib_block) and all(e["newText"] == "unit" for es in edit["changes"].values() for e in es)

    # a size parameter or a wire is renamed within its declaration only
    edit = client.request("textDocument/rename", {"textDocument": {"uri": lib}, "position": _at(lib_text, "d] : R[d]"),
                                                  "newName": "width"})
    assert {e["range"]["start"]["line"] for e in edit["changes"][lib]} == {_at(lib_text, "morphism branch")["line"]}
    assert list(edit["changes"]) == [lib] and len(edit["changes"][lib]) == 5

    # refused: a keyword, a generator, a name taken in any file involved, or a generator renamed
    for new in ("morphism", "dense", "resnet", "Image", "2x"):
        error = client.refused("textDocument/rename", {"textDocument": {"uri": main}, "position": _at(main_text, "block :"),
                                                       "newName": new})
        assert error["code"] == -32803 and f"`{new}`" in error["message"]
    error = client.refused("textDocument/rename", {"textDocument": {"uri": main}, "position": _at(main_text, "dense"),
                                                   "newName": "affine"})
    assert "generator" in error["message"]
    assert client.request("textDocument/prepareRename", {"textDocument": {"uri": main}, "position": _at(main_text, "dense")}) is None
    assert client.request("textDocument/prepareRename", {"textDocument": {"uri": main},
                                                         "position": _at(main_text, "block :")}) is not None


def test_references_skip_a_wire_or_parameter_of_the_same_name(client: Client, tmp_path: Path) -> None:
    (tmp_path / "lib.cat").write_text("object W = R[16]\nmorphism h : W -> W = dense ; relu\n", encoding="utf-8")
    text = ('import "lib.cat"\n'
            "morphism step(x : W) -> W {\n  h = h(x)\n  return h + x\n}\n"
            "morphism twice(h : W -> W) : W -> W = h ; h\n"
            "morphism net : W -> W = step ; h\n")
    (tmp_path / "main.cat").write_text(text, encoding="utf-8")
    main, main_text = _open(client, tmp_path / "main.cat")
    lib = _uri(tmp_path / "lib.cat")
    call = _at(main_text, "h(x)")
    found = client.request("textDocument/references", {"textDocument": {"uri": main}, "position": call,
                                                       "context": {"includeDeclaration": True}})
    where = sorted((loc["uri"] == lib, loc["range"]["start"]["line"], loc["range"]["start"]["character"]) for loc in found)
    # the call `h(x)` and the use in `net` mean lib's `h`; the wire `h` and `twice`'s parameter do not
    assert where == [(False, 2, 6), (False, 6, 31), (True, 1, 9)]
    # the wire: its two occurrences in `step`, not the call between them
    wire = client.request("textDocument/rename", {"textDocument": {"uri": main}, "position": _at(main_text, "h = "),
                                                  "newName": "hidden"})
    assert sorted((e["range"]["start"]["line"], e["range"]["start"]["character"]) for e in wire["changes"][main]) == [(2, 2), (3, 9)]

    # an object named like a keyword argument: the keyword is not a use of it
    path = tmp_path / "kw.cat"
    path.write_text("object features = R[16]\nmorphism f : features -> features = dense(features=16) ; relu\n", encoding="utf-8")
    kw, kw_text = _open(client, path)
    found = client.request("textDocument/references", {"textDocument": {"uri": kw}, "position": _at(kw_text, "features"),
                                                       "context": {"includeDeclaration": True}})
    assert sorted((l["range"]["start"]["line"], l["range"]["start"]["character"]) for l in found) == [(0, 7), (1, 13), (1, 25)]


def test_nothing_crashes_on_a_document_that_never_checked(client: Client, tmp_path: Path) -> None:
    text = "object A = R[8]\nmorphism net : A -> R[4] = dense(heads= ; nosuch  # oops\n"
    uri = _uri(tmp_path / "broken.cat")
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "catnet", "version": 1, "text": text}})
    assert len(client.diagnostics(uri)) == 1
    doc = {"textDocument": {"uri": uri}}
    for position in (_at(text, "dense"), _at(text, "nosuch"), _at(text, "oops"), {"line": 99, "character": 99},
                     {"line": 1, "character": 500}):
        client.request("textDocument/hover", {**doc, "position": position})  # an answer, not an error
        assert client.request("textDocument/definition", {**doc, "position": position}) is None
        refs = client.request("textDocument/references", {**doc, "position": position, "context": {"includeDeclaration": True}})
        assert isinstance(refs, list)
        assert isinstance(client.request("textDocument/completion", {**doc, "position": position})["items"], list)
    found = client.request("textDocument/completion", {**doc, "position": _at(text, " ; nosuch")})["items"]
    assert "dropout=" not in {i["label"] for i in found}  # `dense` takes no `dropout`
    assert "features=" in {i["label"] for i in found}
    # a document the editor never opened: answered empty, not with an error
    ghost = {"textDocument": {"uri": _uri(tmp_path / "never.cat")}, "position": {"line": 0, "character": 0}}
    assert client.request("textDocument/hover", ghost) is None


def test_the_server_never_imports_jax() -> None:
    probe = ("import sys; from catnet.editor import server as S; from catnet.editor.hover import hover_at\n"
             "from catnet.editor.documents import uri_of; from lsprotocol import types as T\n"
             "class LS:\n documents = {}\n check = S.CatnetServer.check\n"
             " def text_document_publish_diagnostics(self, p): pass\n"
             "doc = LS().check(uri_of('examples/transformer.cat'), open('examples/transformer.cat').read())\n"
             "for line in range(20):\n"
             " for ch in range(0, 80, 3): hover_at(doc, T.Position(line, ch))\n"
             "assert not [m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')], 'jax imported'\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", probe], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
