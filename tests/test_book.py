"""The HTML book built from the executed chapters: pages, figures, glued numbers,
and nothing from solutions/ or hidden tests."""

import html
import re
from pathlib import Path

import nbformat
import pytest

from cnn_book.execute import chapter_notebooks
from cnn_book.report import glued_values

pytestmark = pytest.mark.book
CHAPTERS = [p.stem for p in chapter_notebooks()]
GLUE_TEXT = re.compile(r"\{glue:text\}`([A-Za-z_]\w*)(?::([^`]*))?`")


def page_text(built_book: Path, stem: str) -> str:
    return (built_book / "chapters" / f"{stem}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_page_exists_with_its_title(built_book, stem):
    source = nbformat.read(f"chapters/{stem}.ipynb", as_version=4)
    title = source.cells[0].source.splitlines()[0].lstrip("# ").strip()
    assert html.escape(title, quote=False) in page_text(built_book, stem)


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_figures_are_rendered_with_alt_text(built_book, stem):
    images = re.findall(r"<img [^>]*>", page_text(built_book, stem))
    figures = [tag for tag in images if "_images/" in tag]
    assert figures, "no figure on the page"
    for tag in figures:
        alt = re.search(r'alt="([^"]*)"', tag)
        assert alt and alt.group(1).strip(), f"figure without alt text: {tag[:120]}"
        assert (built_book / "chapters" / re.search(r'src="([^"]+)"', tag).group(1)).exists()


@pytest.mark.parametrize("stem", CHAPTERS)
def test_glued_numbers_appear_formatted_in_the_page(built_book, test_build_dir, stem):
    executed = nbformat.read(test_build_dir / "executed" / "chapters" / f"{stem}.ipynb", 4)
    values = glued_values(executed)
    text = html.unescape(re.sub(r"<[^>]+>", "", page_text(built_book, stem)))
    prose = "\n".join(c.source for c in executed.cells if c.cell_type == "markdown")
    references = GLUE_TEXT.findall(prose)
    assert references
    for name, spec in references:
        expected = format(values[name], spec) if spec else str(values[name])
        assert expected in text, f"{name} should read {expected!r}"


def test_no_page_comes_from_solutions_or_assignments(built_book):
    pages = {p.relative_to(built_book).parts[0] for p in built_book.rglob("*.html")}
    assert not pages & {"solutions", "assignments", "grader", "tests"}


def test_no_solution_or_hidden_test_text_in_the_html(built_book):
    for page in built_book.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{page.name} contains {marker}"


def test_launch_buttons_and_repository_link(built_book):
    stem = CHAPTERS[0]
    text = page_text(built_book, stem)
    assert "colab.research.google.com" in text
    assert "mybinder.org" in text
    assert "github.com/cnn-course/cnn-course" in text


@pytest.mark.parametrize("stem", CHAPTERS)
def test_markdown_tables_displayed_by_code_are_rendered(built_book, stem):
    """Tables a cell displays as Markdown must become HTML tables, not raw pipes."""
    without_code = re.sub(r"<pre.*?</pre>", "", page_text(built_book, stem), flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", without_code))
    assert not re.search(r"\|\s*(---|—|–)\s*\|", text), "a Markdown table left unrendered"
