"""A Pygments lexer for ``.cat`` files, so `pygmentize`, Sphinx and MkDocs colour them.

It is registered as the ``pygments.lexers`` entry point ``catnet``
(``pyproject.toml``): ``pygmentize -l catnet FILE`` and ``pygmentize FILE.cat``
find it once catnet is installed, and Markdown listings fenced as
```` ```cat ```` are coloured by any tool that uses Pygments.

The tokens follow ``grammars/catnet.lark``: declaration keywords
(``object``, ``morphism``, ...) and the name each declares, the other
keywords (``repeat``, ``inv``, ``scan``, ``return``, ``under`` ...), the
object constructors ``R``, ``Z``, ``Seq`` and the unit ``I``, the library's
generators (``dense``, ``attention``, ... from
:data:`catnet.library.GENERATORS`), numbers, strings, comments, and the
operators in both spellings (``->`` and ``→``, ``@`` and ``⊗``, ``;`` and
``>>``).  A character the language does not have is an ``Error`` token.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from ..library import GENERATORS

#: Keywords that begin a declaration, each followed by the name it declares.
DECLARATIONS = ("object", "bundle", "morphism", "shared", "main")

#: The other keywords of the language.
KEYWORDS = ("import", "over", "in", "under", "as", "equivariant", "invariant", "repeat", "inv", "scan", "return")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class CatnetLexer(RegexLexer):
    """``.cat`` files: string diagrams as text (see docs/language.md)."""

    name = "catnet"
    aliases = ["catnet", "cat"]
    filenames = ["*.cat"]
    mimetypes = ["text/x-catnet"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"([^"\\\n]|\\.)*"', String.Double),
            (rf"\b({'|'.join(DECLARATIONS)})(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (r"\b(R|Z|Seq)(?=\s*[\[(])", Keyword.Type),
            (r"\bI\b", Keyword.Type),
            (words(tuple(sorted(GENERATORS, key=len, reverse=True)), prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (_NAME, Name),
            (r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", Number),
            (r"->|→|>>|;|@|⊗|⊕|×|[*+\-/=<>⟨⟩:]", Operator),
            (r"[()\[\]{},.]", Punctuation),
            (r".", Error),
        ],
    }
