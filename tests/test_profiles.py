"""profiles.yml: well formed, and every override names a real chapter and a real
parameter of that chapter's `parameters` cell."""

import ast
from pathlib import Path

import nbformat
import pytest

from cnn_book.execute import chapter_notebooks
from cnn_book.profiles import PROFILES_FILE, ProfileError, load_profile


def parameters_cell_names(notebook: Path) -> set[str]:
    nb = nbformat.read(notebook, as_version=4)
    [cell] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    tree = ast.parse(cell.source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}  # fmt: skip


@pytest.mark.parametrize("name", ["quick", "full"])
def test_profile_loads(name):
    profile = load_profile(name)
    assert profile.timeout_seconds > 0


def test_quick_profile_covers_every_chapter():
    quick = load_profile("quick")
    stems = {nb.stem for nb in chapter_notebooks()}
    assert stems, "no chapters found"
    assert stems <= set(quick.parameters), "chapters without a quick-profile entry"


@pytest.mark.parametrize("notebook", chapter_notebooks(), ids=lambda p: p.stem)
def test_overrides_name_existing_parameters(notebook):
    declared = parameters_cell_names(notebook)
    for profile in ("quick", "full"):
        overridden = set(load_profile(profile).parameters_for(notebook))
        assert overridden <= declared, f"{profile} overrides unknown {overridden - declared}"


def test_overrides_name_existing_chapters():
    stems = {nb.stem for nb in chapter_notebooks()}
    for profile in ("quick", "full"):
        unknown = set(load_profile(profile).parameters) - stems
        # Entries may be written before their chapter lands, but not for typos.
        assert all(name[:2].isdigit() for name in unknown), unknown


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ProfileError, match="'nope' is not defined.*known: full, quick"):
        load_profile("nope")


@pytest.mark.parametrize(
    "text, message",
    [
        ("quick: {timeout_seconds: 0}", "positive integer"),
        ("quick: {timeout_seconds: 5, parameters: {a: [1]}}", "must be a mapping"),
        ("quick: [unclosed", "cannot read profiles file"),
    ],
)
def test_malformed_profiles_are_rejected(tmp_path, text, message):
    path = tmp_path / "profiles.yml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        load_profile("quick", path)


def test_profiles_file_is_the_repository_one():
    assert PROFILES_FILE.name == "profiles.yml" and PROFILES_FILE.exists()
