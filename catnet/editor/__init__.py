"""Editor support for ``.cat`` files: syntax highlighting (:mod:`catnet.editor.lexer`)."""
