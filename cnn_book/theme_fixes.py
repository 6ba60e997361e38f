"""Sphinx extension: fixes for the theme pair Jupyter Book 1 installs.

sphinx-book-theme 1.3.0 with pydata-sphinx-theme 0.17.1 (pinned together by
the former) ship a book whose sidebar cannot be opened and whose pages log
errors. Each fix below is small and names its upstream report:

- The sidebar toggle does nothing at any width. pydata-sphinx-theme renders
  its own navbar, holding a second, hidden `.primary-toggle`, whenever a
  `navbar_*` option is set, and sphinx-book-theme leaves `navbar_persistent`
  at the search button; both themes' scripts bind only the first toggle in
  the page, the hidden one (executablebooks/sphinx-book-theme#999 and #917,
  pydata/pydata-sphinx-theme#2451). An empty `navbar_persistent` removes that
  navbar (sphinx-book-theme hides it anyway), so the scripts bind the visible
  button. Search stays in the article header and the sidebar.
- `Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared`:
  Sphinx 7 lists an inline script added after the builder started twice
  (sphinx-doc/sphinx#13402, fixed in Sphinx 8.2, which Jupyter Book 1 cannot
  use), here sphinx-thebe's `const` declarations. Each page keeps one copy.
- `Got invalid theme mode: .`: the light/dark mode is unset unless configured.
- The browser's request for a favicon fails: the book ships one, linked from
  every page and at the site's root (`/favicon.ico`, which browsers ask for on
  pages that link none, such as Jupyter Book's redirecting index.html).
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset_file

FAVICON = Path(__file__).resolve().parent / "static" / "favicon.ico"


def _configure_theme(app: Sphinx, config) -> None:
    config.html_theme_options["navbar_persistent"] = []
    config.html_context.setdefault("default_mode", "light")  # how PST reads it
    if not config.html_favicon:
        config.html_favicon = str(FAVICON)


def _script_key(script) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {})
    return str(filename), tuple(sorted(attributes.items()))


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    unique, seen = [], set()
    for script in context.get("script_files", []):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _favicon_at_the_root(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_asset_file(str(FAVICON), str(app.outdir))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _configure_theme)
    app.connect("build-finished", _favicon_at_the_root)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
