"""What a student reads when their own code is at fault: the cell that failed
rather than a bare NameError, a hidden package named as not allowed, the line
of a syntax error. On the toy assignment of tests/test_grader_runner.py."""

from __future__ import annotations

from test_grader_runner import by_id, correct, grade, toy  # noqa: F401 - toy is a fixture

from grader.session import explain_hidden_import


def test_a_function_whose_cell_failed_says_the_cell_failed(toy, tmp_path):  # noqa: F811
    broken = "raise ValueError('not finished')\n\ndef echo(x):\n    return x"
    r = grade(toy, correct(toy["release"], echo=broken), tmp_path)
    message = by_id(r)["test_echo"]["message"]
    assert message.startswith(
        "echo is not defined: answer cell 'echo', which defines it, failed to run "
        "(ValueError: not finished)"
    ), message
    assert "NameError" not in message
    assert by_id(r)["test_add"]["passed"]  # the other answers still count


def test_a_syntax_error_names_its_line(toy, tmp_path):  # noqa: F811
    r = grade(toy, correct(toy["release"], echo="def echo(x):\n    return x +\n"), tmp_path)
    cell = next(c for c in r["cells"] if c["id"] == "answer:echo")
    assert cell["message"] == "SyntaxError: invalid syntax on line 2 of the cell: return x +"
    assert "on line 2 of the cell: return x +" in by_id(r)["test_echo"]["message"]


def test_a_hidden_package_is_named_as_not_allowed():
    text = "ModuleNotFoundError: No module named 'scipy.signal'"
    assert explain_hidden_import(text, ["scipy", "keras"]) == (
        "ModuleNotFoundError: No module named 'scipy.signal': scipy is not allowed in this "
        "assignment (the grader hides it from submissions; use NumPy)"
    )
    assert explain_hidden_import("No module named 'numpyy'", ["scipy"]) == (
        "No module named 'numpyy'"
    )
