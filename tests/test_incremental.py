"""Checking after an edit (``catnet.check.incremental``) gives what a full check gives."""

from __future__ import annotations

import random

import pytest

from catnet.check import check_text
from catnet.check.incremental import common_prefix, plan
from catnet.errors import CatnetError

from conftest import EXAMPLES

#: Edits a person makes while typing: a character, a word, a line, a keyword broken or joined.
EDITS = ["", "x", " ", "\n", ";", "morphism", "# note\n", "(", ")", "64", "dense", "=", "mor", "\nmain "]


def outcome(text: str, path: str, previous=None):  # noqa: ANN001
    """What a check says: the module's parts, or the error's code, message and place."""
    try:
        m = check_text(text, path, base_dir=str(EXAMPLES[0].parent), previous=previous)
    except CatnetError as e:
        return ("error", e.code, e.message, e.span), None
    bodies = {n: (d.dom, d.cod, d.body, d.span, d.module is m) for n, d in m.definitions.items()}
    return ("ok", m.syntax, bodies, m.objects, m.entry), m


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_edits_check_as_a_fresh_check_does(example):
    text = example.read_text(encoding="utf-8")
    path = example.name
    _, first = outcome(text, path)
    assert first is not None
    rng = random.Random(example.stem)
    previous, old = first, text
    for _ in range(12):
        at = rng.randrange(len(old) + 1)
        cut = rng.choice([0, 0, 1, 3, 8])
        new = old[:at] + rng.choice(EDITS) + old[at + cut:]
        fresh, _ = outcome(new, path)
        again, module = outcome(new, path, previous)
        assert again == fresh, f"edit at {at} of {example.name}"
        if module is not None:
            previous, old = module, new


def test_an_edit_far_down_keeps_the_definitions_above(tmp_path):
    lines = ["object V = R[8]"] + [f"morphism f{i} : V -> V = {'f' + str(i - 1) + ' ; ' if i else ''}dense ; relu" for i in range(40)]
    text = "\n".join(lines) + "\n"
    m = check_text(text, "chain.cat")
    edited = text.replace("morphism f39 : V -> V = f38 ; dense ; relu", "morphism f39 : V -> V = f38 ; dense ; gelu")
    kept = plan(m, edited, "chain.cat")
    assert kept is not None and len(kept.decls) == 40  # the object and f0 … f38
    again = check_text(edited, "chain.cat", previous=m)
    assert again.definitions["f38"].body is m.definitions["f38"].body  # not checked again
    assert again.definitions["f38"].module is again
    assert again.definitions["f39"].body != m.definitions["f39"].body


def test_a_changed_definition_is_checked_again_with_everything_using_it():
    text = "object V = R[8]\nmorphism g : V -> V = dense\nmorphism f : V -> V = g ; relu\nmorphism h : V -> V = relu\n"
    m = check_text(text, "x.cat")
    edited = text.replace("= relu\n", "= gelu\n")  # only h changes
    again = check_text(edited, "x.cat", previous=m)
    assert again.definitions["f"].body is m.definitions["f"].body
    # A definition that names one after the edit is not kept.
    text2 = "object V = R[8]\nmorphism f : V -> V = g ; relu\nmorphism g : V -> V = dense\nmain f\n"
    m2 = check_text(text2, "y.cat")
    edited2 = text2.replace("= dense\n", "= dense ; gelu\n")
    again2 = check_text(edited2, "y.cat", previous=m2)
    assert again2.definitions["f"].body is not m2.definitions["f"].body
    assert again2.definitions["f"].body == check_text(edited2, "y.cat").definitions["f"].body


def test_a_broken_keyword_after_a_declaration_reparses_it():
    text = "object V = R[8]\nmorphism f : V -> V = dense\nmorphism g : V -> V = relu\n"
    m = check_text(text, "x.cat")
    edited = text.replace("morphism g", "morphis g")
    with pytest.raises(CatnetError) as fresh:
        check_text(edited, "x.cat")
    with pytest.raises(CatnetError) as again:
        check_text(edited, "x.cat", previous=m)
    assert (again.value.code, again.value.span) == (fresh.value.code, fresh.value.span)


def test_no_plan_for_another_file_or_carriage_returns():
    m = check_text("object V = R[8]\nmorphism f : V -> V = dense\nmorphism g : V -> V = relu\n", "x.cat")
    assert plan(m, m.source + "\n", "other.cat") is None
    assert plan(m, m.source.replace("\n", "\r\n"), "x.cat") is None
    assert plan(None, m.source, "x.cat") is None


def test_common_prefix():
    assert common_prefix("", "") == 0
    assert common_prefix("abc", "abd") == 2
    assert common_prefix("abc", "abc") == 3
    assert common_prefix("abc", "ab") == 2
    assert common_prefix("x" * 1000 + "a", "x" * 1000 + "b") == 1000

