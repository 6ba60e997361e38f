"""The behavioural leak check (grader/behaviour.py, `grader check-leaks --behaviour`).

No function a student can read, in the helper package they install or in the code
the chapters print, may earn a point of any assignment; an answer put back, under
another name and with its parameters renamed and reordered, must be caught.
"""

from __future__ import annotations

import inspect
import textwrap

import nbformat
import pytest

from grader import cli
from grader.behaviour import _fits, _orders, check_behaviour
from grader.config import REPO_ROOT, load_config, resolve_paths

A1, A2, A3 = (
    "a1_convolution_from_scratch",
    "a2_backprop_conv_pooling",
    "a3_shapes_params_receptive_fields",
)


def test_a_renamed_copy_is_tried_with_its_optional_parameters_in_every_order():
    def answer(n, k, padding=0, stride=1):
        raise NotImplementedError

    def copy(size, kernel, step=1, pad=0):
        return (size + 2 * pad - kernel) // step + 1

    sig = inspect.signature(answer)
    assert _fits(sig, copy)
    assert _orders(sig, copy) == [[0, 1, 2, 3], [0, 1, 3, 2]]


def test_a_partial_copy_gets_a_prefix_and_a_misfit_is_not_tried():
    def answer(X, K, b, stride=1, padding=0):
        raise NotImplementedError

    def single_image(x, kernel, bias):  # ignores stride and padding
        return x

    def needs_more(a, b, c, d, e, f):
        return a

    sig = inspect.signature(answer)
    assert _fits(sig, single_image) and _orders(sig, single_image) == [[0, 1, 2]]
    assert not _fits(sig, needs_more)
    assert not _fits(sig, lambda x: x)  # cannot take the three required values


@pytest.mark.grading
def test_no_function_students_can_read_earns_a_point():
    report = check_behaviour(resolve_paths(load_config()))
    assert report.leaks == [], "\n".join(map(str, report.leaks))
    assert {r.assignment for r in report.runs} == {A1, A2, A3}
    labels = set(report.runs[0].labels)
    # the package and the chapters were both tried, exercise solutions in Markdown too
    assert "cnn_course.shapes.same_padding" in labels
    assert "chapters/02_convolution.ipynb: corr2d" in labels
    assert "chapters/03_padding_and_stride.ipynb: conv_output_size" in labels
    assert "chapters/02_convolution.ipynb: corr2d_shift_add" in labels
    assert "chapters/06_backpropagation.ipynb: conv_backward_single" in labels


# answers put back: the old package module, a chapter cell and an exercise solution
PLANTED_CELL = '''
import numpy as np


def correlate(image, kernel, pad=0, step=1):
    """A1's corr2d under another name, its optional parameters swapped."""
    image = np.pad(image, pad)
    kh, kw = kernel.shape
    rows = (image.shape[0] - kh) // step + 1
    cols = (image.shape[1] - kw) // step + 1
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            out[i, j] = np.sum(image[i * step:i * step + kh, j * step:j * step + kw] * kernel)
    return out
'''
PLANTED_EXERCISE = '''
1. Write the receptive field of dilated stacks.

   ````{admonition} Solution
   :class: dropdown
   ```python
   def rf(stack):
       size, jump = 1, 1
       for layer in stack:
           k, s, d = layer if len(layer) == 3 else (*layer, 1)
           size += d * (k - 1) * jump
           jump *= s
       return size
   ```
   ````
'''


@pytest.mark.grading
def test_an_answer_put_back_is_caught(tmp_path, monkeypatch, capsys):
    package = tmp_path / "planted_course"
    package.mkdir()
    (package / "__init__.py").write_text("")
    reference = REPO_ROOT / "tests" / "reference" / "backprop_numpy.py"
    (package / "layers.py").write_text(reference.read_text())  # the old cnn_course module
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(textwrap.dedent(PLANTED_CELL)),
        nbformat.v4.new_markdown_cell(textwrap.dedent(PLANTED_EXERCISE)),
    ]
    nbformat.write(nb, chapters / "99_planted.ipynb")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))

    rc = cli.main(["check-leaks", "--behaviour", "--package", "planted_course",
                   "--chapters", str(chapters)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 3, err
    expected = [
        f"{A1}: test_corr2d (20 points) passes with corr2d = chapters/99_planted.ipynb: "
        "correlate, given (x, k, padding, stride)",
        f"{A2}: test_conv2d_backward_input_padding (10 points) passes with conv2d_backward = "
        "planted_course.layers.conv2d_backward",
        f"{A2}: test_max_pool2d_backward_ties (10 points) passes with max_pool2d_backward = "
        "planted_course.layers.maxpool2d_backward",
        f"{A3}: test_receptive_field_strided (15 points) passes with receptive_field = "
        "chapters/99_planted.ipynb: rf",
    ]
    for line in expected:
        assert line in err, err
