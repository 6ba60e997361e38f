"""What a sandbox sees of the installed Python packages: the allowed ones, nothing else.

The sandbox binds the Python installation read-only (the interpreter, its
standard library, the virtual environment) and ``/usr``. Every folder named
``site-packages`` or ``dist-packages`` in those trees (the virtual
environment's, the base interpreter's, the system's) is replaced in the sandbox
by an empty read-only folder into which the allowed distributions are bound
back, file by file at the top level: the ones the assignment allows
(``GraderSettings.sandbox_packages``), those the worker itself needs (IPython,
NumPy), and everything they depend on (their ``Requires-Dist``, computed with
``importlib.metadata``). Packages named in ``hidden_packages`` are left out even
when an allowed distribution depends on them. So ``sys.path.append`` of any
folder still finds only what the assignment allows.

A folder without ``__init__.py`` that several distributions share (a namespace
package such as ``google``, or ``__pycache__``) is itself replaced by an empty
folder holding only the allowed distributions' parts.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_FOLDERS = ("site-packages", "dist-packages")
WORKER_NEEDS = ("ipython", "numpy")  # grader._student runs cells in IPython; grader.wire uses NumPy
SCAN_DEPTH = 32  # every folder: package folders themselves are not walked into
NAMESPACE_DEPTH = 3


class UnknownPackage(ValueError):
    """A name in ``sandbox_packages`` is neither an installed distribution nor a package."""


@dataclass(frozen=True)
class SiteView:
    """Folders to cover (``masks``) and what to bind back into them (``binds``)."""

    masks: tuple[str, ...] = ()
    binds: tuple[tuple[str, str], ...] = ()  # (path on the host, path in the sandbox)
    distributions: tuple[str, ...] = ()
    visible: dict[str, tuple[str, ...]] = field(default_factory=dict)  # mask -> names in it

    def bwrap_args(self) -> list[str]:
        """bubblewrap options that build the view (after the trees are bound)."""
        args: list[str] = []
        for mask in self.masks:
            args += ["--tmpfs", mask]
        for src, dest in self.binds:
            args += ["--ro-bind", src, dest]
        for mask in self.masks:
            args += ["--remount-ro", mask]
        return args


def package_folders(roots: list[str]) -> list[str]:
    """Every site-packages or dist-packages folder in ``roots``, without following links."""
    found = []
    for root in roots:
        stack = [(root, 0)]
        while stack:
            folder, depth = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for e in entries:
                try:
                    is_dir = e.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if not is_dir:
                    continue
                if e.name in PACKAGE_FOLDERS:
                    found.append(e.path)
                elif depth + 1 < SCAN_DEPTH:
                    stack.append((e.path, depth + 1))
    return sorted(set(found))


def describe(packages: list[str]) -> dict:
    """The allowed distributions and their dependencies, as this interpreter sees them.

    Returns {"distributions": [{"name", "site", "files"}], "unknown": [names]};
    ``files`` are paths relative to ``site`` (the folder the distribution is in).
    Runs in the sandbox's interpreter (see ``_describe_in``).
    """
    import importlib.metadata as md

    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - packaging is almost always there
        Requirement = None  # noqa: N806

    by_module = md.packages_distributions()

    def find(name: str):
        try:
            return md.distribution(name)
        except md.PackageNotFoundError:
            for dist_name in by_module.get(name, []):
                try:
                    return md.distribution(dist_name)
                except md.PackageNotFoundError:
                    continue
        return None

    def requirements(dist, extras: set[str]) -> list[tuple[str, set[str]]]:
        out = []
        for text in dist.requires or []:
            if Requirement is not None:
                req = Requirement(text)
                if req.marker is not None and not any(
                    req.marker.evaluate({"extra": e}) for e in (extras or {""})
                ):
                    continue
                out.append((req.name, set(req.extras)))
            else:  # keep what has no extra; a platform-only dependency is simply absent
                name, _, marker = text.partition(";")
                if "extra" in marker:
                    continue
                out.append((name.split("[")[0].strip(" <>=!~(").split(" ")[0], set()))
        return out

    unknown, seen, result = [], {}, []
    queue = []
    for name in packages:
        base, _, extra = name.partition("[")
        dist = find(base.strip())
        if dist is None:
            unknown.append(name)
        else:
            queue.append((dist, {e.strip() for e in extra.rstrip("]").split(",") if e.strip()}))
    while queue:
        dist, extras = queue.pop()
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen and extras <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | extras
        if not any(d["name"] == key for d in result):
            result.append(
                {
                    "name": key,
                    "site": str(dist.locate_file("")),
                    "files": [str(f) for f in (dist.files or [])] + _metadata_folder(dist),
                }
            )
        for dep_name, dep_extras in requirements(dist, extras):
            dep = find(dep_name)
            if dep is not None:
                queue.append((dep, dep_extras))
    return {"distributions": sorted(result, key=lambda d: d["name"]), "unknown": unknown}


def _metadata_folder(dist) -> list[str]:
    """The dist-info folder itself (a distribution without a RECORD lists no files)."""
    path = getattr(dist, "_path", None)
    return [f"{Path(path).name}/METADATA"] if path is not None else []


def _describe_in(python: str, packages: list[str]) -> dict:
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        return describe(packages)
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); "
        "from grader.site_view import describe; "
        "print(json.dumps(describe(json.loads(sys.argv[2]))))"
    )
    parent = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run(
        [python, "-I", "-c", code, parent, json.dumps(packages)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out)


def _hidden(entry: str, hidden: tuple[str, ...]) -> bool:
    return any(entry == h or entry.startswith(h + ".") for h in hidden)


def _entries(files: list[str]) -> dict[str, set]:
    """Tree of the paths a distribution installs: {name: subtree}."""
    tree: dict[str, dict] = {}
    for f in files:
        parts = Path(f).parts
        if not parts or parts[0] == ".." or os.path.isabs(f):
            continue  # scripts installed outside the site folder (bin/)
        node = tree
        for part in parts:
            node = node.setdefault(part, {})
    return tree


def _is_shared(path: Path) -> bool:
    """A folder several distributions may put files into: a namespace package, __pycache__."""
    if not path.is_dir() or path.is_symlink():
        return False
    if path.name.endswith((".dist-info", ".egg-info", ".libs", ".data")):
        return False
    return not (path / "__init__.py").exists()


@functools.lru_cache(maxsize=16)
def site_view(
    python: str, packages: tuple[str, ...], hidden: tuple[str, ...], roots: tuple[str, ...]
) -> SiteView:
    """The view of ``python``'s packages for a sandbox that binds ``roots``.

    Raises UnknownPackage for a name that is neither a distribution nor an
    importable top-level package of ``python``.
    """
    info = _describe_in(python, list(dict.fromkeys([*WORKER_NEEDS, *packages])))
    if info["unknown"]:
        raise UnknownPackage(
            f"sandbox_packages names {', '.join(map(repr, info['unknown']))}, which {python} "
            "has not installed (use distribution names such as 'keras', or top-level "
            "package names such as 'tensorflow')"
        )
    folders = package_folders(list(roots))
    by_real = {os.path.realpath(f): f for f in folders}
    masks: list[str] = list(folders)
    binds: list[tuple[str, str]] = []
    visible: dict[str, set[str]] = {f: set() for f in folders}
    bound: set[str] = set()

    def add(host: Path, dest: str, subtree: dict, depth: int) -> None:
        if dest in bound:
            return
        if subtree and depth < NAMESPACE_DEPTH and _is_shared(host):
            if dest not in masks:
                masks.append(dest)
            for name, sub in subtree.items():
                add(host / name, f"{dest}/{name}", sub, depth + 1)
            return
        if not host.exists() and not host.is_symlink():
            return  # listed in RECORD but gone (e.g. a .pyc never written)
        bound.add(dest)
        binds.append((os.path.realpath(host), dest))

    for dist in info["distributions"]:
        site = by_real.get(os.path.realpath(dist["site"]))
        if site is None:
            continue  # outside the trees the sandbox binds: invisible anyway
        for name, subtree in _entries(dist["files"]).items():
            if _hidden(name, hidden):
                continue
            visible[site].add(name)
            add(Path(dist["site"]) / name, f"{site}/{name}", subtree, 0)
    return SiteView(
        masks=tuple(masks),
        binds=tuple(binds),
        distributions=tuple(d["name"] for d in info["distributions"]),
        visible={k: tuple(sorted(v)) for k, v in visible.items()},
    )
