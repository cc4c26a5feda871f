"""The before/after page in a real browser: headless Chromium renders it (screenshot) and runs its script
(DOM dump). Skipped, with the reason, where no Chromium is installed."""
import html
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from selfdenoise.core import compare_page

BROWSER = next((b for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="chromium not installed: apt-get install chromium")

RED, BLUE = (200, 30, 30), (30, 40, 210)


def solid(colour, h=29, w=41):
    noise = np.random.default_rng(0).integers(-6, 7, (h, w, 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def page(tmp_path):
    """Two viewers (odd sizes): red | blue, and four versions (red, gray, blue, green) shown red | gray."""
    versions = [("red", solid(RED)), ("gray", solid((128, 128, 128))), ("blue", solid(BLUE)),
                ("green", solid((0, 150, 0)))]
    return compare_page.write_compare_page(tmp_path / "report.html", [
        {"name": "first <one>", "versions": [("noisy", solid(RED)), ("denoised", solid(BLUE))]},
        {"name": "four", "versions": versions, "left": 0, "right": 1}])


def browse(tmp_path, *args, timeout=90):
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_screenshot_shows_both_versions_split_at_the_slider(tmp_path, page):
    shot = tmp_path / "shot.png"
    browse(tmp_path, f"--screenshot={shot}", "--window-size=800,1200", page.as_uri() + "#pos=25")
    assert shot.is_file()
    a = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert a.std() > 20  # not blank
    red = (a[..., 0] > 150) & (a[..., 2] < 80)
    blue = (a[..., 2] > 150) & (a[..., 0] < 80)
    rows = np.flatnonzero((red | blue).any(axis=1))
    top = rows[0]  # the first viewer's image: red left of the divider, blue right of it
    bottom = top + np.flatnonzero(~(red | blue)[top:].any(axis=1))[0]
    y = top + (bottom - top) * 4 // 5  # below the divider's grip and the labels
    xs_red, xs_blue = np.flatnonzero(red[y]), np.flatnonzero(blue[y])
    assert len(xs_red) and len(xs_blue) and xs_red.max() < xs_blue.min()
    width = xs_blue.max() - xs_red.min() + 1
    assert abs((xs_red.max() - xs_red.min() + 1) / width - 0.25) < 0.03, (xs_red.min(), xs_red.max(), xs_blue.max())
    assert width >= compare_page.MIN_DISPLAY * 0.9  # a small image is shown enlarged


def test_script_runs_and_follows_the_url(tmp_path, page):
    dom = browse(tmp_path, "--dump-dom", page.as_uri() + "#pos=25&zoom=2&right=2")
    sections = re.findall(r"<section [^>]*>.*?</section>", dom, flags=re.S)
    assert len(sections) == 2
    for s in sections:
        head = s[:s.index(">")]
        assert 'data-ready="1"' in head and 'data-pos="25"' in head and 'data-zoom="2"' in head, head
        assert re.search(r'class="sd-layer sd-top" style="clip-path: inset\(0(px)? 0(px)? 0(px)? 25%\);?"', s), s[:3000]
        assert re.search(r'class="sd-divider" style="left: 25%;?"', s)
        assert "scale(2)" in s  # one transform for both layers, on their stage
        assert re.search(r'<span class="sd-level">200%</span>', s)
    assert "first &lt;one&gt;" in sections[0]
    right = re.search(r'<img class="sd-img-right" alt="([^"]*)" src="([^"]*)"', sections[1])
    assert right.group(1) == "blue" and html.unescape(right.group(2)).endswith("-2.jpg")  # right=2 chose "blue"
    assert re.search(r'<span class="sd-label sd-label-right">blue</span>', sections[1])
