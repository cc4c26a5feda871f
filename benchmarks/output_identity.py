"""Record, then compare, the outputs of the public API bit for bit: for refactors that must not change a
number. Run ``record`` on the old commit and ``compare`` on the new one (same machine, same threads):

    PYTHONPATH=src python3 benchmarks/output_identity.py record /tmp/identity   # on the old commit
    PYTHONPATH=src python3 benchmarks/output_identity.py compare /tmp/identity  # on the new one

Covered: NLM (sigma given and estimated), BM3D (colour and gray), zero-shot, asym-mask and Self2Self fitted
to one image, Self2Self-1D and Savitzky-Golay on a track, n2n/ne2ne model files written by the old code and
loaded by the new one (with and without TTA), and a fresh n2n training. The bm3d package itself is not
deterministic (two runs of one commit differ by ~5e-7), so BM3D is compared within 1e-6.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from skimage import data

import selfdenoise as sd

TOLERANCE = {"bm3d": 1e-6, "bm3d_gray": 1e-6}


def outputs(folder: Path, record: bool) -> dict[str, np.ndarray]:
    clean = (data.astronaut()[100:171, 150:233] / 255.0).astype(np.float32)  # 71 x 83
    noisy = sd.add_noise(clean, "gauss:25", seed=3).astype(np.float32)
    track = np.cumsum(np.random.default_rng(0).normal(size=(40, 5, 2)), 0)
    out = {"nlm": sd.denoise(noisy, "nlm"), "nlm_sigma": sd.denoise(noisy, "nlm", sigma=25),
           "bm3d": sd.denoise(noisy, "bm3d", sigma=25), "bm3d_gray": sd.denoise(noisy.mean(-1), "bm3d"),
           "zero_shot": sd.denoise(noisy, "zero-shot", steps=5),
           "asym": sd.denoise(noisy, "asym-mask", steps=3, crop=40),
           "self2self": sd.denoise(noisy, "self2self", steps=3, passes=2),
           "track_self2self": sd.denoise_sequence(track, "self2self", steps=5, ensemble=2, latent=4),
           "track_savgol": sd.denoise_sequence(track, "savgol")}
    images = [sd.add_noise(clean, "gauss:25", seed=10 + i) for i in range(3)]
    for method in ("n2n", "ne2ne"):
        path = folder / f"{method}.sdm"
        if record:
            sd.train(images, method, path, noise="gauss:25", steps=4, crop=32, batch=2)
        model = sd.load_model(path)
        out[f"{method}_model"], out[f"{method}_model_tta"] = model.denoise(noisy), model.denoise(noisy, tta=4)
    out["n2n_fresh"] = sd.train(images, "n2n", None, noise="gauss:25", steps=3, crop=32, batch=2).model.denoise(noisy)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["record", "compare"])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    args.folder.mkdir(parents=True, exist_ok=True)
    out = outputs(args.folder, args.mode == "record")
    if args.mode == "record":
        np.savez(args.folder / "outputs.npz", **out)
        print(f"recorded {len(out)} outputs in {args.folder}")
        return 0
    ref = np.load(args.folder / "outputs.npz")
    differ = []
    for key, value in out.items():
        diff = float(np.abs(ref[key] - value).max())
        same = diff <= TOLERANCE.get(key, 0.0)
        print(f"{key:18s} {'identical' if diff == 0 else f'max difference {diff:.2g}'}{'' if same else '  DIFFERS'}")
        differ += [] if same else [key]
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
