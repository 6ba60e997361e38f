"""A memory limit that counts everything a process holds: one memory cgroup per process.

An address-space limit (``RLIMIT_AS``) counts mappings, not memory: pages of a
``memfd``, a tmpfs file, a pipe or a socket buffer are not in the address
space, and TensorFlow reserves far more address space than it uses. A memory
cgroup counts the pages themselves, whoever holds them, and the kernel kills
the process (``SIGKILL``) when it goes over.

Each sandboxed worker and each trusted test runner gets its own cgroup, created
beside the cgroup the grader runs in:

- cgroup v2 (Ubuntu and most current distributions, ``/sys/fs/cgroup``):
  ``memory.max``, no swap, the whole group killed together. The parent folder
  must have the memory controller enabled for its children and be writable, as
  for root on a systemd host, or for a user inside
  ``systemd-run --user --scope -p Delegate=yes``.
- cgroup v1 (older hosts and containers, ``/sys/fs/cgroup/memory``):
  ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes`` where swap is
  accounted).

``MemoryCgroups.find()`` says whether this works here, and why not; where it
does not, the callers fall back to ``RLIMIT_AS`` alone. The process joins its
cgroup itself, before it runs anything (grader._launch), by writing its pid
into ``Cgroup.procs_file``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("grader")

PREFIX = "grader-"
_counter = itertools.count()


@dataclass
class Cgroup:
    """One memory-limited cgroup (a folder in the cgroup file system)."""

    path: Path
    version: int
    limit_bytes: int

    @property
    def procs_file(self) -> str:
        return str(self.path / "cgroup.procs")

    def _read(self, name: str) -> str:
        try:
            return (self.path / name).read_text()
        except OSError:
            return ""

    def oom_kills(self) -> int:
        """How many processes the limit has killed so far."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        for line in self._read(name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def peak_bytes(self) -> int | None:
        """The most memory the group has held (None where the kernel does not say)."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        text = self._read(name).strip()
        return int(text) if text.isdigit() else None

    def pids(self) -> list[int]:
        return [int(p) for p in self._read("cgroup.procs").split() if p.isdigit()]

    def remove(self, wait: float = 2.0) -> None:
        """Delete the cgroup once its processes have gone (they are being killed)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    log.warning("could not remove the memory cgroup %s: %s", self.path, exc)
                    return
                time.sleep(0.02)


class MemoryCgroups:
    """A folder of the cgroup file system where this process can create limited cgroups."""

    def __init__(self, parent: Path, version: int):
        self.parent = parent
        self.version = version

    def __repr__(self) -> str:
        return f"cgroup v{self.version} memory controller under {self.parent}"

    def create(self, kind: str, limit_mb: int) -> Cgroup:
        """A new empty cgroup limited to ``limit_mb`` megabytes of memory, without swap."""
        self._remove_stale()
        name = f"{PREFIX}{kind}-{os.getpid()}-{next(_counter)}-{secrets.token_hex(3)}"
        group = Cgroup(self.parent / name, self.version, limit_mb * 1024 * 1024)
        group.path.mkdir()
        try:
            limit = str(group.limit_bytes)
            if self.version == 2:
                _write(group.path / "memory.max", limit)
                _write(group.path / "memory.swap.max", "0", optional=True)
                _write(group.path / "memory.oom.group", "1", optional=True)
            else:
                _write(group.path / "memory.limit_in_bytes", limit)
                _write(group.path / "memory.memsw.limit_in_bytes", limit, optional=True)
                _write(group.path / "memory.swappiness", "0", optional=True)
        except OSError:
            group.remove(wait=0)
            raise
        return group

    def _remove_stale(self) -> None:
        """Remove empty cgroups left by grader processes that have died (a crash, kill -9)."""
        try:
            entries = list(self.parent.iterdir())
        except OSError:
            return
        for entry in entries:
            parts = entry.name.split("-")
            if not entry.name.startswith(PREFIX) or len(parts) < 5 or not parts[2].isdigit():
                continue
            if not Path(f"/proc/{parts[2]}").exists():
                try:
                    entry.rmdir()
                except OSError:
                    pass

    @classmethod
    def find(cls, root: Path = Path("/")) -> tuple[MemoryCgroups | None, str]:
        """Where this process can create memory cgroups, or (None, the reason it cannot).

        ``root`` is for tests: a folder laid out like ``/`` (``proc/self/cgroup``,
        ``proc/self/mountinfo`` and the cgroup file systems).
        """
        try:
            own = _own_cgroups(root)
            mounts = _cgroup_mounts(root)
        except OSError as exc:
            return None, f"cannot read this process's cgroups ({exc})"
        reasons = []
        for version in (2, 1):
            if version not in own or version not in mounts:
                continue
            mount_point, mount_root = mounts[version]
            path = own[version]
            if path != mount_root and not path.startswith(mount_root.rstrip("/") + "/"):
                reasons.append(f"cgroup v{version}: this process's cgroup is outside the mount")
                continue
            rel = path[len(mount_root) :].strip("/")
            here = Path(mount_point, rel) if rel else Path(mount_point)
            if here.name.startswith(PREFIX):  # a runner the grader started: beside it
                candidates = [here.parent]
            elif version == 1:  # v1 lets a cgroup hold processes and children
                candidates = [here]
            else:  # v2 does not: beside our own cgroup, unless it is the top of the mount
                candidates = [here.parent] if rel else [here]
            for parent in candidates:
                problem = _usable(parent, version)
                if problem is None:
                    return cls(parent, version), ""
                reasons.append(f"cgroup v{version} at {parent}: {problem}")
        if not reasons:
            return None, "no memory controller is mounted (cgroup v1 or v2)"
        return None, "; ".join(reasons)


@functools.lru_cache(maxsize=1)
def available() -> tuple[MemoryCgroups | None, str]:
    """``MemoryCgroups.find()``, once per process."""
    return MemoryCgroups.find()


def _write(path: Path, value: str, optional: bool = False) -> None:
    try:
        path.write_text(value)
    except FileNotFoundError:
        if not optional:
            raise
    except OSError:
        if not optional:
            raise


def _usable(parent: Path, version: int) -> str | None:
    """None if limited children can be created in ``parent``, else why not."""
    if version == 2:
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
        except OSError as exc:
            return f"cannot read cgroup.subtree_control ({exc.strerror})"
        if "memory" not in enabled:
            return "the memory controller is not enabled for its children"
    limit_file = "memory.max" if version == 2 else "memory.limit_in_bytes"
    trial = parent / f"{PREFIX}probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        trial.mkdir()
    except OSError as exc:
        return f"cannot create a cgroup there ({exc.strerror})"
    try:
        (trial / limit_file).write_text(str(1 << 30))
    except OSError as exc:
        return f"cannot set a memory limit ({exc.strerror})"
    finally:
        try:
            trial.rmdir()
        except OSError:
            pass
    if not os.access(parent / "cgroup.procs", os.W_OK):
        return "cannot move processes there (cgroup.procs is not writable)"
    return None


def _own_cgroups(root: Path) -> dict[int, str]:
    """This process's cgroup path per version: {2: '/a/b', 1: '/x'} (memory hierarchy for v1)."""
    own = {}
    for line in (root / "proc/self/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            own[2] = path
        elif "memory" in controllers.split(","):
            own[1] = path
    return own


def _cgroup_mounts(root: Path) -> dict[int, tuple[str, str]]:
    """{version: (mount point, root of the mount)} of the v2 and the v1 memory hierarchies."""
    mounts = {}
    for line in (root / "proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        mount_root, mount_point = fields[3], fields[4]
        fstype, options = fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""
        point = str(root / mount_point.lstrip("/"))
        if fstype == "cgroup2" and 2 not in mounts:
            mounts[2] = (point, mount_root)
        elif fstype == "cgroup" and "memory" in options.split(",") and 1 not in mounts:
            mounts[1] = (point, mount_root)
    return mounts
