"""pyproject.toml (pip) and environment.yml (conda, Binder) list the same packages."""

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def normalise(line: str) -> str:
    req = Requirement(line)
    marker = f"; {req.marker}" if req.marker else ""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name.lower()}{extras}{req.specifier}{marker}"


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {normalise(r) for r in project["dependencies"]}


def environment_requirements() -> set[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    [pip] = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    return {normalise(r) for r in pip if not r.startswith("-e")}


def test_pip_and_conda_environments_list_the_same_packages():
    assert environment_requirements() == pyproject_requirements()


def test_environment_installs_the_helper_package_for_binder():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    [pip] = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert "-e ." in pip and "-e ./package" in pip


def test_jupyter_book_stays_below_2():
    [jb] = [Requirement(r) for r in pyproject_requirements() if r.startswith("jupyter-book")]
    assert not jb.specifier.contains("2.0.0") and jb.specifier.contains("1.0.4.post1")


def test_required_packages_are_all_declared():
    names = {Requirement(r).name.lower() for r in pyproject_requirements()}
    required = {"jupyter-book", "nbgrader", "numpy", "keras", "matplotlib", "papermill"}
    assert required <= names
    assert names & {"tensorflow", "tensorflow-cpu"}
