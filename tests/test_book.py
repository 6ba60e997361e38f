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
REPO = Path(__file__).resolve().parent.parent
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


def test_no_solution_or_hidden_test_text_anywhere_in_the_html_folder(built_book):
    """Pages, page sources and the student notebooks offered for download alike."""
    for path in built_book.rglob("*"):
        if path.suffix not in {".html", ".ipynb", ".txt", ".md", ".py", ".js"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{path.relative_to(built_book)} contains {marker}"


def test_released_student_notebooks_ship_with_the_book(built_book):
    """The assignments page links a copy inside the HTML: a class offline can download it."""
    page = (built_book / "assignments.html").read_text(encoding="utf-8")
    released = sorted(REPO.glob("assignments/*/*.ipynb"))
    assert released
    for notebook in released:
        [copy] = built_book.glob(f"_downloads/*/{notebook.name}")
        assert copy.read_bytes() == notebook.read_bytes(), f"{copy} differs from {notebook}"
        assert f'href="{copy.relative_to(built_book).as_posix()}"' in page, notebook.name
        raw = f"https://raw.githubusercontent.com/cnn-course/cnn-course/main/{notebook.relative_to(REPO)}"
        assert f'href="{raw}"' in page, f"no raw link to {notebook.name}"


def test_mathjax_is_served_from_the_book(built_book):
    stem = CHAPTERS[0]
    scripts = re.findall(r'<script[^>]*src="([^"]*)"', page_text(built_book, stem))
    mathjax = [src for src in scripts if "mathjax" in src.lower()]
    assert mathjax == ["../_static/mathjax/tex-svg-full.js"], mathjax
    assert (built_book / "_static" / "mathjax" / "tex-svg-full.js").stat().st_size > 1_000_000
    assert "Apache License" in (built_book / "_static" / "mathjax" / "LICENSE").read_text()


def test_no_page_loads_a_script_or_stylesheet_from_another_site(built_book):
    for page in built_book.rglob("*.html"):
        if page.relative_to(built_book).parts[0].startswith("_"):
            continue  # theme template fragments, not pages
        text = page.read_text(encoding="utf-8")
        assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([a-z]+://[^"]*)"', text)
        assert not assets, f"{page.name} loads {assets}"


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
