"""Where a number comes from: the machine, the commit, and the peak memory of a call.

Peak memory is the peak resident set size (RSS) of this process during a method's calls: Linux
``VmHWM`` from ``/proc/self/status``, reset before every call through ``/proc/self/clear_refs``; where
that reset is not possible, ``resource.getrusage(...).ru_maxrss`` (the peak since the process started,
an upper bound). ``PeakMemory.source`` says which. ``tracemalloc`` is not used: it does not see the
memory torch and NumPy allocate in C.
"""
from __future__ import annotations

import os
import platform
import resource
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import InputError


def device_description() -> str:
    """``cpu: N cores, <model>`` (+ the GPU when torch sees one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"cpu: {cores} cores, {model}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        text += f"; gpu: {torch.cuda.get_device_name(0)}"
    return text


def origin(commit: str | None, command: str | None = None) -> dict:
    """The fields every result and selection file records about where it comes from: the machine, the
    command (default: this process's own), the commit, the date (UTC) and the Python version."""
    return {"device": device_description(), "command": command if command is not None else shlex.join(sys.argv),
            "commit": commit, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version()}


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """``git rev-parse HEAD`` of the repository holding ``path`` (default: this package), with
    ``-dirty`` when tracked files differ from it; None outside a repository or without git."""
    where = str(path or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


class PeakMemory:
    """Peak RSS of this process around a call, in MiB (see the module docstring)."""

    def __init__(self):
        self.resettable = self._reset()
        self.source = ("VmHWM (peak RSS, reset before each call)" if self.resettable
                       else "ru_maxrss (process peak since start)")

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def start(self) -> None:
        if self.resettable:
            self._reset()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def peak_mb(self) -> float:
        if self.resettable:
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
            except OSError:
                pass
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        return kb / (1024.0 * 1024.0) if sys.platform == "darwin" else kb / 1024.0

    @staticmethod
    def gpu_peak_mb() -> float | None:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.max_memory_allocated() / 2**20
        return None


def require_clean_tree(commit: str | None, exploratory: bool) -> str | None:
    """``commit``, refusing code with uncommitted changes (``-dirty``) unless the run is ``exploratory``:
    a reported number must reproduce from its commit. Outside a git checkout (an installed package) the
    commit is unknown and the run goes ahead; its JSON records the version."""
    if commit and commit.endswith("-dirty") and not exploratory:
        raise InputError("the source tree has uncommitted changes: commit them first, or mark the run "
                         "--exploratory (its results are kept out of the README)")
    return commit
