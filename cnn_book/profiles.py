"""Execution profiles: which parameters each notebook runs with (profiles.yml).

Each chapter's `parameters` cell holds the full-run values; a profile
overrides some of them per notebook. `quick` is the CPU smoke run used in CI,
`full` the GPU run that feeds the published book.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROFILES_FILE = Path(__file__).resolve().parent.parent / "profiles.yml"


class ProfileError(ValueError):
    """The profiles file is malformed or does not define the requested profile."""


@dataclass(frozen=True)
class Profile:
    name: str
    timeout_seconds: int
    parameters: dict[str, dict] = field(default_factory=dict)
    description: str = ""

    def parameters_for(self, notebook: str | Path) -> dict:
        """Parameter overrides for a notebook, looked up by its file stem."""
        return dict(self.parameters.get(Path(notebook).stem) or {})


def load_profile(name: str, path: Path = PROFILES_FILE) -> Profile:
    """Read one profile from the profiles file, checking its shape."""
    try:
        profiles = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ProfileError(f"cannot read profiles file {path}: {error}") from error
    if name not in profiles:
        raise ProfileError(
            f"profile {name!r} is not defined in {path}; known: {', '.join(sorted(profiles))}"
        )
    spec = profiles[name] or {}
    timeout = spec.get("timeout_seconds")
    if not isinstance(timeout, int) or timeout <= 0:
        raise ProfileError(f"profile {name!r}: timeout_seconds must be a positive integer")
    parameters = spec.get("parameters") or {}
    for notebook, values in parameters.items():
        if values is not None and not isinstance(values, dict):
            raise ProfileError(f"profile {name!r}: parameters of {notebook!r} must be a mapping")
    return Profile(name, timeout, parameters, spec.get("description", ""))
