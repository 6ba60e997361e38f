"""The note on pages built with a profile other than `full`: what it says."""

import nbformat

from cnn_book.profile_note import add_profile_note, parameter_defaults, profile_note_source
from cnn_book.profiles import Profile

PARAMETERS = 'epochs = 5  # passes\ntrain_samples = None  # None: all\nmodels = ["VGG16", "B0"]'


def chapter():
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]})
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), parameters]
    return nb


def test_defaults_are_the_parameters_cell_values_as_written():
    assert parameter_defaults(chapter()) == {
        "epochs": "5",
        "train_samples": "None",
        "models": '["VGG16", "B0"]',
    }


def test_note_lists_each_override_beside_the_published_value():
    profile = Profile("quick", 60, {}, "CPU smoke run")
    overrides = {"epochs": 2, "train_samples": 1000, "models": ["B0"]}
    source = profile_note_source(profile, overrides, parameter_defaults(chapter()))
    assert source.startswith(":::{admonition} Built with the `quick` profile")
    assert ":class: warning" in source and "CPU smoke run" in source
    assert "| `epochs` | `2` | `5` |" in source
    assert "| `train_samples` | `1000` | `None` |" in source
    assert "| `models` | `['B0']` | `[\"VGG16\", \"B0\"]` |" in source
    assert source.endswith(":::")


def test_note_says_so_when_the_profile_changes_nothing():
    source = profile_note_source(Profile("quick", 60, {}), {}, {})
    assert "changes none of this chapter's settings" in source and "|" not in source


def test_note_goes_after_the_title_and_never_on_the_published_profile():
    nb = chapter()
    assert add_profile_note(nb, Profile("quick", 60, {}), {"epochs": 1})
    assert nb.cells[1].cell_type == "markdown" and "profile-note" in nb.cells[1].metadata.tags
    published = chapter()
    assert not add_profile_note(published, Profile("full", 60, {}), {})
    assert len(published.cells) == 2
