"""The peer tools, run beside our methods in the same benchmark run, through their own code.

A peer (CAREamics, DeepInverse) lives in its own virtual environment (``make peers`` builds
``.peers/venv``), because its torch and torchvision pins differ from this package's; its runner
(``benchmarks/peers/run_peer.py``) never imports selfdenoise. For each test image the bench writes the
noisy input as a float32 NPY, runs the peer on it with its documented defaults and the time budget given,
and reads the denoised image and what the peer reports (its version, the configuration it used, its
seconds) back. The image is the peer's whole training set, as for a Noise2Void user (transductive).
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.io import save_npy

#: peer name -> (tool, what it runs)
PEERS = {
    "careamics-n2v2": ("CAREamics", "Noise2Void2 (N2V2), its default configuration"),
    "careamics-n2n": ("CAREamics", "Noise2Noise on a second noisy realisation"),
    "deepinv-ne2ne": ("DeepInverse", "Neighbor2Neighbor loss with its example UNet"),
    "deepinv-r2r": ("DeepInverse", "Recorrupted-to-Recorrupted loss with its example UNet"),
}
#: tool -> its package (whose version the peer's report gives)
PACKAGES = {"CAREamics": "careamics", "DeepInverse": "deepinv"}


def peer_label(peer: str, report: dict) -> str:
    """``CAREamics 0.3.5``: the tool and the version its environment ran."""
    tool = PEERS[peer][0]
    return f"{tool} {report.get('versions', {}).get(PACKAGES[tool], '')}".strip()
#: where the bench looks for the peers' python and runner (from the repository root), unless
#: ``SELFDENOISE_PEERS_PYTHON`` / ``SELFDENOISE_PEERS_RUNNER`` say otherwise
DEFAULT_PYTHON = Path(".peers/venv/bin/python")
DEFAULT_RUNNER = Path("benchmarks/peers/run_peer.py")


def check_peers(names: list[str]) -> tuple[Path, Path]:
    """Fail early, with one line, on an unknown peer or a missing peer environment; return (python, runner)."""
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise InputError(f"unknown peer {', '.join(unknown)} (known: {', '.join(PEERS)})")
    python = Path(os.environ.get("SELFDENOISE_PEERS_PYTHON", DEFAULT_PYTHON))
    runner = Path(os.environ.get("SELFDENOISE_PEERS_RUNNER", DEFAULT_RUNNER))
    if not python.is_file():
        raise InputError(f"{python}: no peer environment (build it with `make peers`, or set SELFDENOISE_PEERS_PYTHON)")
    if not runner.is_file():
        raise InputError(f"{runner}: no peer runner (run the bench from the repository root, or set "
                         "SELFDENOISE_PEERS_RUNNER)")
    return python, runner


def run_peer(name: str, noisy: np.ndarray, *, budget: float, seed: int, python: Path, runner: Path,
             second: np.ndarray | None = None, timeout: float | None = None) -> tuple[np.ndarray, dict]:
    """Denoise ``noisy`` (H, W[, C], float in [0, 1]) with peer ``name`` trained on it for at most ``budget``
    seconds; returns (output of the same shape, the peer's report: tool, version, configuration, seconds)."""
    with tempfile.TemporaryDirectory(prefix="selfdenoise-peer-") as tmp:
        folder = Path(tmp)
        image = noisy[..., 0] if noisy.ndim == 3 and noisy.shape[-1] == 1 else noisy
        save_npy(folder / "noisy.npy", np.ascontiguousarray(image, dtype=np.float32))
        command = [str(python), str(runner), name, "--input", str(folder / "noisy.npy"), "--output",
                   str(folder / "out.npy"), "--budget", f"{budget:g}", "--seed", str(int(seed)),
                   "--json", str(folder / "info.json")]
        if second is not None:
            save_npy(folder / "second.npy", np.ascontiguousarray(second.reshape(image.shape), dtype=np.float32))
            command += ["--input2", str(folder / "second.npy")]
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=timeout if timeout is not None else 10 * budget + 300)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise InputError(f"peer {name} failed (exit {done.returncode}): {last}")
        out = np.load(folder / "out.npy").astype(np.float32).reshape(noisy.shape)
        info = json.loads((folder / "info.json").read_text())
    return out, info
