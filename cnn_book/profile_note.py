"""The note on top of every chapter built with a profile other than the published one.

A quick build trains on subsets for fewer epochs, so its numbers are not the
published book's. `python -m cnn_book.execute` adds this note to the executed
copy of each notebook (never to the committed source): which profile built
the page, and each setting it changed, next to the published run's value.
"""

from __future__ import annotations

import ast

import nbformat

from cnn_book.profiles import Profile

PUBLISHED_PROFILE = "full"
NOTE_TAG = "profile-note"


def parameter_defaults(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Each assignment of the `parameters` cell, as its source text (the full-run value)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return {
                node.targets[0].id: ast.get_source_segment(cell.source, node.value)
                for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            }
    return {}


def profile_note_source(profile: Profile, overrides: dict, defaults: dict[str, str]) -> str:
    """The note's MyST Markdown: an admonition with one table row per override."""
    described = f" Its description: {profile.description}." if profile.description else ""
    lines = [
        f":::{{admonition}} Built with the `{profile.name}` profile, not the published run",
        ":class: warning",
        "",
        f"This page was built with the `{profile.name}` profile of `profiles.yml`, not with "
        f"`{PUBLISHED_PROFILE}`, the run the published book shows. Every number, figure and "
        f"result-dependent word on it comes from this shorter run.{described}",
        "",
    ]
    if overrides:
        lines += [
            "The profile changes these settings of the chapter:",
            "",
            "| setting | this page | published run |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| `{name}` | `{value!r}` | `{defaults.get(name, '(not set)')}` |"
            for name, value in overrides.items()
        ]
    else:
        lines.append("The profile changes none of this chapter's settings.")
    lines.append(":::")
    return "\n".join(lines)


def add_profile_note(nb: nbformat.NotebookNode, profile: Profile, overrides: dict) -> bool:
    """Insert the note after the title cell unless the profile is the published one."""
    if profile.name == PUBLISHED_PROFILE:
        return False
    cell = nbformat.v4.new_markdown_cell(
        profile_note_source(profile, overrides, parameter_defaults(nb)),
        metadata={"tags": [NOTE_TAG]},
    )
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        del cell["id"]
    nb.cells.insert(1, cell)
    return True
