"""grader.text: what a submission writes becomes safe to print and to write."""

from __future__ import annotations

import json

import pytest

from grader.text import safe_data, safe_line, safe_text, shorten

HOSTILE = "ok\x00 \x1b[2J\x1b[32mall OK\x1b[0m \ud800 \u202eevil \x9b1m\rover\x7f"


@pytest.mark.parametrize("clean", [safe_text, safe_line])
def test_nothing_unprintable_survives(clean):
    out = clean(HOSTILE)
    assert out.isprintable()
    out.encode("utf-8")  # a lone surrogate would raise here
    assert "\\x00" in out and "\\x1b[32mall OK" in out and "\\ud800" in out
    assert "\\u202e" in out and "\\x9b" in out and "\\r" in out and "\\x7f" in out


def test_multiline_text_keeps_newlines_tabs_and_readable_characters():
    assert safe_text("a\tb\r\nc\nd") == "a\tb\nc\nd"
    assert safe_text("café, 日本, 😀") == "café, 日本, 😀"


def test_a_line_escapes_newlines_as_repr_does():
    assert safe_line("s001\n\x1b[32m") == "s001\\n\\x1b[32m"
    assert safe_line("a\tb") == "a\\tb"


def test_shorten_says_how_much_was_left_out():
    assert shorten("x" * 30, 10) == "x" * 10 + " [... 20 more characters not shown]"
    assert shorten("short", 10) == "short"
    assert safe_text("\x00" * 10, 8) == "\\x00\\x00 [... 32 more characters not shown]"


def test_escaping_is_idempotent():
    once = safe_text(HOSTILE)
    assert safe_text(once) == once


def test_safe_data_cleans_keys_values_and_nested_lists():
    record = json.loads('{"\\ud800": [["\\u0000", 1, null, true]], "n": 2.5}')
    out = safe_data(record)
    assert out == {"\\ud800": [["\\x00", 1, None, True]], "n": 2.5}
    json.dumps(out, ensure_ascii=False).encode("utf-8")
