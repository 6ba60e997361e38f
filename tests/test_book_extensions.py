"""The book's two Sphinx extensions, without a build (tests/test_browser.py checks
their effect on the built book)."""

from types import SimpleNamespace

import pytest
from sphinx.builders.html._assets import _JavaScript

from cnn_book import offline_mathjax, theme_fixes


def test_packaged_mathjax_is_installed_with_its_licence():
    folder = offline_mathjax.mathjax_dir()
    assert (folder / "es5" / "tex-svg-full.js").stat().st_size > 1_000_000
    assert "Apache License" in (folder / "LICENSE").read_text()


def test_missing_mathjax_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(offline_mathjax.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(offline_mathjax.MathJaxMissingError, match="make install"):
        offline_mathjax.mathjax_dir()


def test_mathjax_path_points_inside_the_book():
    config = SimpleNamespace(mathjax_path="https://cdn.example/mathjax.js")
    offline_mathjax._use_local_mathjax(None, config)
    assert config.mathjax_path == "mathjax/tex-svg-full.js"


def test_theme_options_drop_the_hidden_navbar_and_set_a_mode():
    config = SimpleNamespace(
        html_theme_options={"navbar_persistent": ["search-button-field"], "launch_buttons": {}},
        html_context={},
        html_favicon="",
    )
    theme_fixes._configure_theme(None, config)
    assert config.html_theme_options == {"navbar_persistent": [], "launch_buttons": {}}
    assert config.html_context["default_mode"] == "light"
    assert config.html_favicon.endswith("favicon.ico")


def test_an_inline_script_listed_twice_is_kept_once():
    """Sphinx 7 lists a late inline script under filename None and again under ''."""
    thebe = "const THEBE_JS_URL = 'x'"
    scripts = [
        _JavaScript("_static/doctools.js"),
        _JavaScript(None, body=thebe),
        _JavaScript("_static/sphinx-thebe.js", **{"async": "async"}),
        _JavaScript("", body=thebe),
        _JavaScript("", body="var other = 1"),
    ]
    context = {"script_files": scripts}
    theme_fixes._drop_duplicate_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[2], scripts[4]]
