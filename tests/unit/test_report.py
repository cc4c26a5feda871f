import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from selfdenoise import api
from selfdenoise.bench import demo, report
from selfdenoise.core.errors import MissingDependencyError


def result(method, psnr, ssim, seconds, **extra):
    return {"method": method, "protocol": "p", "dataset": "kodak24", "n_images": 3, "psnr": psnr, "ssim": ssim,
            "gcmse": 12.5, "seconds_per_image": seconds, "peak_memory_mb": 321.0, "noise": "gauss:25", "seed": 0,
            "device": "cpu: 2 cores, X", "commit": "abc123", "command": "selfdenoise bench p", **extra}


def crop(h=21, w=23, value=0):
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = value
    return a


@pytest.fixture
def results():
    return {"noisy": result("noisy", 20.17, 0.31, None),
            "zero-shot": result("zero-shot", 30.5, 0.85, 10.0, sigma="auto"),
            "bm3d": result("bm3d", 31.9, 0.871, 40.0, sigma=25.0)}


def test_markdown_table(tmp_path, results):
    paths = report.write_report(tmp_path, "p", results)
    md = paths["md"].read_text()
    assert "| method | PSNR (dB) | SSIM |" in md
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in md.splitlines() if line.startswith("| ") and "---" not in line and "method" not in line}
    assert rows["zero-shot"][:2] == ["30.50", "0.8500"]
    assert rows["zero-shot"][4] == "4.0x" and rows["bm3d"][4] == "1.0x"  # BM3D 40 s / zero-shot 10 s
    assert rows["noisy"][3] == "–" and rows["bm3d"][-1] == "25"
    assert "abc123" in md and "`selfdenoise bench p`" in md
    assert "Per camera" not in md


def test_html_is_self_contained_with_crops(tmp_path, results):
    panels = [("noisy", crop(value=10)), ("zero-shot", crop(value=100)), ("clean", crop(value=250)[..., :1])]
    paths = report.write_report(tmp_path, "p", results, [{"name": "kodim01", "panels": panels}])
    page = paths["html"].read_text()
    assert page.count("<table") == 1 and "<td>30.50</td>" in page
    imgs = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', page)
    assert [a for a, _ in imgs] == ["noisy", "zero-shot", "clean"]
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(imgs[1][1]))))
    assert decoded.shape == (21, 23, 3) and decoded[0, 0, 0] == 100
    assert 'src="http' not in page and "<script src" not in page and "<link" not in page
    viewer = re.search(r'<section class="sd-viewer".*?</section>', page, flags=re.S).group(0)  # before / after
    assert viewer.count("<select") == 2 and viewer.count("<option") == 6 and 'type="range"' in viewer
    assert re.search(r'<img class="sd-img-left" alt="noisy" src="data:image/png;base64,', viewer)
    assert re.search(r'<img class="sd-img-right" alt="zero-shot" src="data:image/png;base64,', viewer)
    assert page.count('class="sd-viewer"') == 1 and page.count("<script>") == 1
    montage = np.asarray(Image.open(paths["crop:kodim01"]))
    assert montage.shape[1] == 3 * 23 + 2 * 4 and montage.shape[0] > 21
    assert "(crop-kodim01.png)" in paths["md"].read_text()


def test_per_camera_table_and_plot(tmp_path, results):
    results["bm3d"]["per_camera"] = {"Canon80D": {"n_images": 2, "psnr": 37.25, "ssim": 0.97},
                                     "Sony": {"n_images": 1, "psnr": 36.0, "ssim": 0.96}}
    results["zero-shot"]["per_camera"] = {"Canon80D": {"n_images": 2, "psnr": 37.5, "ssim": 0.98}}
    paths = report.write_report(tmp_path, "real-polyu", results,
                                curves={"zero-shot": [(1.0, 28.0), (10.0, 30.5), (3.0, 29.5)]})
    md = paths["md"].read_text()
    assert "## Per camera" in md
    assert "| Canon80D | 2 | 37.50 / 0.9800 | 37.25 / 0.9700 |" in md
    assert "| Sony | 1 | – | 36.00 / 0.9600 |" in md
    assert paths["plot"].exists() and Image.open(paths["plot"]).size[0] > 100
    assert paths["html"].read_text().count("data:image/png;base64,") == 1
    assert "<script" not in paths["html"].read_text()  # no crops: no viewer


def test_compose_places_panels_side_by_side():
    out = report.compose([("a", crop(20, 10, 50)), ("b", crop(30, 12, 200))], gap=4)
    assert out.dtype == np.uint8 and out.shape[1] == 10 + 4 + 12 and out.shape[2] == 3
    bar = out.shape[0] - 30
    assert bar > 0 and out[bar + 5, 2, 0] == 50 and out[bar + 25, 20, 0] == 200
    assert out[bar + 25, 2].tolist() == [255, 255, 255]  # below the shorter panel: background


def test_demo_writes_comparison_and_report(tmp_path, monkeypatch, capsys):
    from scipy.ndimage import uniform_filter

    seen = {}

    def fake(image, method="zero-shot", **kw):
        seen[method] = kw
        if method == "bm3d":
            raise MissingDependencyError("method 'bm3d' needs the optional bm3d package")
        size = 3 if method == "zero-shot" else 5
        return uniform_filter(np.clip(image, 0, 1), size=(size, size, 1))

    monkeypatch.setattr(api, "denoise", fake)
    monkeypatch.setattr(demo, "CROP", (100, 180, 48))
    r = demo.run_demo(tmp_path / "d", seed=3, progress=False, budget=7.0)
    d = tmp_path / "d"
    for name in ("noisy.png", "clean.png", "zero-shot.png", "nlm.png", "comparison.png", "report.md", "report.html"):
        assert (d / name).exists(), name
    assert not (d / "bm3d.png").exists() and "bm3d" in r["skipped"]
    assert seen["zero-shot"]["budget"] == 7.0 and seen["nlm"]["sigma"] == 25.0
    comparison = np.asarray(Image.open(d / "comparison.png"))
    assert comparison.shape[1] == 4 * 48 + 3 * 4  # noisy | zero-shot | NLM | clean
    assert r["results"]["noisy"]["psnr"] < r["results"]["zero-shot"]["psnr"]
    assert r["results"]["zero-shot"]["seconds"] >= 0
    clean = np.asarray(Image.open(d / "clean.png"))
    from skimage import data

    np.testing.assert_array_equal(clean, data.astronaut()[100:148, 180:228])
    out = capsys.readouterr().out
    assert "zero-shot" in out and "NLM" in out and "PSNR" in out
    assert "<img" in (d / "report.html").read_text()
