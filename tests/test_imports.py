"""Imports and loading: the import root, what may be read, the import graph, and ``load``/``loads``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import catnet
import catnet.check.imports as imports
from catnet import CatnetError, load, loads
from catnet.check import check_file

OK = "morphism f : R[4] -> R[4] = relu\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _error(call, *args, **kwargs) -> CatnetError:  # noqa: ANN001
    with pytest.raises(CatnetError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp/project/main.cat`` importing ``../secret.cat``; the working directory is ``tmp``."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "secret.cat", "object Secret = R[4]\n")
    _write(tmp_path / "project" / "main.cat", 'import "../secret.cat"\nmorphism f : Secret -> Secret = relu\n')
    return tmp_path


# -- the import root -------------------------------------------------------------------


def test_dotdot_out_of_the_root_is_e0004_at_the_import(project: Path) -> None:
    e = _error(load, "project/main.cat")
    assert e.code == "E0004"
    assert e.span is not None and (e.span.file, e.span.line, e.span.column) == ("project/main.cat", 1, 1)
    assert e.message == "`../secret.cat` is outside the import root"
    assert "the import root is `project` (the directory of main.cat)" in e.notes
    assert e.help is not None and "--root DIR" in e.help
    assert '1 | import "../secret.cat"' in e.render()


def test_a_root_that_contains_the_target_allows_it(project: Path) -> None:
    assert "Secret" in load("project/main.cat", root=".").imported_objects
    assert "Secret" in check_file(project / "project" / "main.cat", root=project).imported_objects


def test_absolute_paths_are_outside_even_when_they_exist(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.cat", f'import "{tmp_path / "lib.cat"}"\n' + OK)
    _write(tmp_path / "lib.cat", "object W = R[4]\n")
    e = _error(load, main)
    assert e.code == "E0004" and "import paths are relative to the importing file" in e.notes


@pytest.mark.parametrize("target", ["/etc/passwd", "/proc/self/environ", "../../../../../../../../etc/passwd"])
def test_system_files_are_never_read(tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[str] = []
    original = imports.read_source
    monkeypatch.setattr(imports, "read_source", lambda path, *a: read.append(path) or original(path, *a))
    e = _error(load, _write(tmp_path / "main.cat", f'import "{target}"\n' + OK))
    assert e.code == "E0004" and read == []
    assert "root:x:0" not in e.render()


def test_symlinks_inside_the_root_are_followed_and_outside_refused(tmp_path: Path) -> None:
    _write(tmp_path / "outside" / "lib.cat", "object W = R[4]\n")
    _write(tmp_path / "root" / "lib" / "blocks.cat", "object W = R[4]\n")
    os.symlink("lib/blocks.cat", tmp_path / "root" / "inside.cat")
    os.symlink("../outside/lib.cat", tmp_path / "root" / "out.cat")
    os.symlink("../outside", tmp_path / "root" / "outdir")
    good = _write(tmp_path / "root" / "good.cat", 'import "inside.cat"\nmorphism f : W -> W = relu\n')
    assert "W" in load(good).imported_objects
    for path in ("out.cat", "outdir/lib.cat"):
        e = _error(load, _write(tmp_path / "root" / "bad.cat", f'import "{path}"\n' + OK))
        assert e.code == "E0004" and e.message == f"`{path}` leads outside the import root"
        assert any("symbolic link" in n for n in e.notes)


def test_the_root_applies_to_imports_of_imports(tmp_path: Path) -> None:
    _write(tmp_path / "root" / "lib" / "a.cat", 'import "../../secret.cat"\n')
    _write(tmp_path / "secret.cat", "object S = R[4]\n")
    e = _error(load, _write(tmp_path / "root" / "main.cat", 'import "lib/a.cat"\n' + OK))
    assert e.code == "E0004" and e.span is not None and e.span.file.endswith(os.path.join("lib", "a.cat"))
    assert 'import "../../secret.cat"' in e.render()  # the excerpt is from the imported file


def test_loads_uses_base_dir_as_the_root(tmp_path: Path) -> None:
    _write(tmp_path / "lib.cat", "object W = R[4]\n")
    (tmp_path / "sub").mkdir()
    text = 'import "../lib.cat"\nmorphism f : W -> W = relu\n'
    e = _error(loads, text, "x.cat", base_dir=tmp_path / "sub")
    assert e.code == "E0004" and e.span is not None and e.span.file == "x.cat"
    assert "the base directory" in e.notes[0]
    assert "W" in loads(text, "x.cat", base_dir=tmp_path / "sub", root=tmp_path).imported_objects


def test_a_root_that_is_not_a_directory_is_e0001(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.cat", OK)
    for root in (tmp_path / "missing", main):
        e = _error(load, main, root=root)
        assert e.code == "E0001" and "is not a directory" in e.message


# -- what is read ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (lambda d: os.mkfifo(d / "it.cat"), "E0001", "named pipe"),
        (lambda d: (d / "it.cat").mkdir(), "E0001", "directory"),
        (lambda d: os.symlink("it.cat", d / "it.cat"), "E0001", "loop"),
        (lambda d: None, "E0203", "cannot find"),
    ],
)
def test_imports_of_what_is_not_a_file_are_located(tmp_path: Path, make, code: str, words: str) -> None:  # noqa: ANN001
    make(tmp_path)
    e = _error(load, _write(tmp_path / "main.cat", 'object V = R[4]\nimport "it.cat"\n' + OK))
    assert e.code == code and words in e.message
    assert e.span is not None and (e.span.line, e.span.column) == (2, 1)
    assert '2 | import "it.cat"' in e.render()


def test_an_import_path_longer_than_a_file_name_is_e0203(tmp_path: Path) -> None:
    e = _error(load, _write(tmp_path / "main.cat", 'import "' + "x" * 300 + '.cat"\n'))
    assert e.code == "E0203" and any("longer than the system allows" in n for n in e.notes)
    assert len(e.message) < 100


def test_an_imported_file_that_is_not_cat_shows_only_its_offending_line(tmp_path: Path) -> None:
    _write(tmp_path / "notes.cat", "line one: secret\n" + "z" * 1000 + "\nline three: secret\n")
    e = _error(load, _write(tmp_path / "main.cat", 'import "notes.cat"\n'))
    out = e.render()
    assert e.span is not None and e.span.file.endswith("notes.cat") and "secret" in out
    assert "line three" not in out and "zzz" not in out


# -- the import graph -------------------------------------------------------------------


def _chain(d: Path, n: int) -> Path:
    for i in range(n):
        head = f'import "f{i + 1}.cat"\n' if i + 1 < n else "object A = R[4]\n"
        _write(d / f"f{i}.cat", f"{head}morphism m{i} : A -> A = relu\n")
    return d / "f0.cat"


def test_a_long_chain_of_imports_does_not_recurse_per_import(tmp_path: Path) -> None:
    # 300 imports checked with a recursion limit of 250 frames: the stack
    # does not grow with the chain.
    main = _chain(tmp_path, 300)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)
    try:
        module = load(main)
    finally:
        sys.setrecursionlimit(limit)
    assert list(module.definitions) == ["m0"] and "m299" in module.imported


def test_each_file_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "d.cat", "object D = R[4]\n")
    _write(tmp_path / "b.cat", 'import "d.cat"\n')
    _write(tmp_path / "sub" / "c.cat", 'import "../d.cat"\n')
    main = _write(tmp_path / "a.cat", 'import "b.cat"\nimport "sub/c.cat"\nimport "./d.cat"\nmorphism f : D -> D = relu\n')
    checked: list[str] = []
    original = imports.new_checker
    monkeypatch.setattr(imports, "new_checker", lambda text, shown, *a: checked.append(Path(shown).name) or original(text, shown, *a))
    load(main)
    assert sorted(checked) == ["b.cat", "c.cat", "d.cat"]


def test_cycles_are_e0204_at_the_import_that_closes_them(tmp_path: Path) -> None:
    _write(tmp_path / "b.cat", 'import "c.cat"\n')
    _write(tmp_path / "c.cat", 'object C = R[4]\nimport "b.cat"\n')
    e = _error(load, _write(tmp_path / "a.cat", 'import "b.cat"\n'))
    assert e.code == "E0204" and e.message == "import cycle: b.cat → c.cat → b.cat"
    assert e.span is not None and e.span.file.endswith("c.cat") and e.span.line == 2
    assert '2 | import "b.cat"' in e.render()
    e = _error(load, _write(tmp_path / "self.cat", 'import "self.cat"\n'))
    assert e.code == "E0204" and e.message == "import cycle: self.cat → self.cat"


def test_errors_in_imported_files_are_reported_there_in_import_order(tmp_path: Path) -> None:
    _write(tmp_path / "b.cat", "object B = R[4]\nmorphism g : B -> B = rleu\n")
    _write(tmp_path / "c.cat", "this is not catnet\n")
    e = _error(load, _write(tmp_path / "a.cat", 'import "b.cat"\nimport "c.cat"\n'))
    # b.cat is checked in full before c.cat is read, as the imports are written.
    assert e.code == "E0201" and e.span is not None and e.span.file.endswith("b.cat") and e.span.line == 2
    assert "2 | morphism g : B -> B = rleu" in e.render()


# -- load and loads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: loads(None), "`catnet.loads` takes the text of a .cat file as a str, not None"),
        (lambda: loads(123), "`catnet.loads` takes the text of a .cat file as a str, not int"),
        (lambda: loads(Path("x.cat")), "`catnet.loads` takes the text of a .cat file as a str, not PosixPath"),
        (lambda: loads(OK, path=3), "`path=` of `catnet.loads` must be a str (the name of the text in messages), not int"),
        (lambda: loads(OK, base_dir=3), "`base_dir=` of `catnet.loads` must be the path of a directory (a str or a pathlib.Path), not int"),
        (lambda: loads(OK, root=[]), "`root=` of `catnet.loads` must be the path of a directory (a str or a pathlib.Path), not list"),
        (lambda: load(None), "`catnet.load` takes the path of a .cat file (a str or a pathlib.Path), not None"),
        (lambda: load(123), "`catnet.load` takes the path of a .cat file (a str or a pathlib.Path), not int"),
        (lambda: load(b"x.cat"), "`catnet.load` takes the path of a .cat file (a str or a pathlib.Path), not bytes"),
        (lambda: load("x.cat", root=1.5), "`root=` of `catnet.load` must be the path of a directory (a str or a pathlib.Path), not float"),
    ],
)
def test_wrong_argument_types_are_e0801(call, message: str) -> None:  # noqa: ANN001
    e = _error(call)
    # An argument has no place in a .cat file: the error is not located.
    assert (e.code, e.span, e.message) == ("E0801", None, message)
    assert e.render().startswith(f"error[E0801]: {message}")


def test_loads_of_a_path_suggests_load() -> None:
    e = _error(loads, Path("x.cat"))
    assert e.help is not None and "catnet.load(path)" in e.help


def test_loads_takes_a_bom_and_bytes_like_file_loading() -> None:
    assert list(loads("\ufeff" + OK).definitions) == ["f"]
    assert list(loads(("\ufeff" + OK).encode()).definitions) == ["f"]
    e = _error(loads, b"object V = R[4]\n# caf\xe9\n", "x.cat")
    assert e.code == "E0002" and e.span is not None and (e.span.file, e.span.line, e.span.column) == ("x.cat", 2, 6)


def test_load_accepts_str_and_pathlike(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.cat", OK)
    assert list(load(main).definitions) == list(load(str(main)).definitions) == ["f"]
    assert list(catnet.load(main, root=tmp_path).definitions) == ["f"]
