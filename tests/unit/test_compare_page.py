"""Before/after comparison pages: their structure, escaping, previews, and the API's ``report`` option."""
import base64
import html
import io
import re

import numpy as np
import pytest
from PIL import Image

from selfdenoise import api
from selfdenoise.core import compare_page
from selfdenoise.core.errors import InputError

EVIL = '<img src=x onerror="alert(1)">&\'.png'


def rgb(h=23, w=37, seed=0):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def viewers(page: str) -> list[str]:
    return re.findall(r'<section class="sd-viewer".*?</section>', page, flags=re.S)


def test_one_viewer_per_image_with_previews_next_to_the_page(tmp_path):
    gray16 = np.full((23, 37), 65535, np.uint16)
    gray16[:, :10] = 0
    comparisons = [{"name": EVIL, "versions": [("noisy <b>", rgb()), ("denoised & co", rgb(seed=1))]},
                   {"name": "gray", "versions": [("before", gray16), ("after", gray16[..., None] // 2)]}]
    path = compare_page.write_compare_page(tmp_path / "report.html", comparisons, title="t <1>")
    page = path.read_text()
    found = viewers(page)
    assert len(found) == 2 and page.count('type="range"') == 2
    for v in found:
        assert len(re.findall(r'<img class="sd-img-(left|right)"', v)) == 2 and "sd-divider" in v
        assert "<select" not in v  # two versions: no choice to make
    assert EVIL not in page and "onerror=\"alert" not in page and html.escape(EVIL) in page
    assert "noisy &lt;b&gt;" in page and "<title>t &lt;1&gt;</title>" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script src" not in page
    srcs = re.findall(r'<img class="sd-img-\w+" alt="[^"]*" src="([^"]+)"', page)
    assert len(srcs) == 4 and all(s.startswith("report_files/") for s in srcs)
    for s in srcs:
        with Image.open(tmp_path / s) as im:
            assert im.format == "JPEG" and im.size == (37, 23)
    with Image.open(tmp_path / srcs[2]) as im:  # gray stays gray; uint16 shown by its full range
        assert im.mode == "L" and np.asarray(im)[5, 0] < 5 and np.asarray(im)[5, 30] > 250
    assert sorted(p.name for p in (tmp_path / "report_files").iterdir()) == sorted(s.split("/")[1] for s in srcs)


def test_previews_are_bounded_and_embedding_writes_no_files(tmp_path):
    big = np.zeros((5, 2101, 3), np.uint8)
    big[:, 1000:] = 255
    wide = [{"name": "wide", "versions": [("a", big), ("b", big)]}]
    path = compare_page.write_compare_page(tmp_path / "p.html", wide)
    with Image.open(next((tmp_path / "p_files").iterdir())) as im:
        assert max(im.size) == compare_page.MAX_SIDE and im.mode == "RGB"
    assert 'data-width="2048"' in path.read_text()

    panels = [("noisy 20.1 dB", rgb()), ("nlm", rgb(seed=1)), ("zero-shot", rgb(seed=2)),
              ("clean", rgb(seed=3)[..., :1])]
    view = compare_page.embedded_viewer("crop", panels, left=0, right=2)
    assert view.count("<select") == 2 and view.count("<option") == 8
    assert re.search(r'data-side="left">.*?<option value="0" data-src="data:image/png;base64,[^"]+" selected>', view)
    assert re.search(r'data-side="right">.*?<option value="2" data-src="data:[^"]+" selected>zero-shot</option>', view)
    src = re.search(r'<img class="sd-img-right" alt="zero-shot" src="data:image/png;base64,([^"]+)"', view).group(1)
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(src))))
    np.testing.assert_array_equal(decoded, np.round(rgb(seed=2) * 255).astype(np.uint8))  # PNG: lossless
    assert not (tmp_path / "crop_files").exists()


def test_bad_comparisons_are_refused(tmp_path):
    with pytest.raises(InputError, match="differ in size"):
        compare_page.embedded_viewer("x", [("a", rgb(23, 37)), ("b", rgb(23, 36))])
    with pytest.raises(InputError, match="at least two versions"):
        compare_page.embedded_viewer("x", [("a", rgb())])
    with pytest.raises(InputError, match="right=5"):
        compare_page.embedded_viewer("x", [("a", rgb()), ("b", rgb())], right=5)
    with pytest.raises(InputError, match="NaN"):
        compare_page.to_display(np.full((4, 4), np.nan, np.float32))


def test_denoise_file_report_writes_a_page_next_to_the_output(tmp_path):
    src = tmp_path / "in put.png"
    Image.fromarray(np.round(rgb(21, 19) * 255).astype(np.uint8)).save(src)
    r = api.denoise_file(src, tmp_path / "out" / "d.png", "nlm", sigma=20, report=True)
    page = tmp_path / "out" / "d.report.html"
    assert r["report"] == str(page) and len(viewers(page.read_text())) == 1
    text = page.read_text()
    assert "in put.png" in text and "noisy input" in text and "denoised (nlm)" in text
    assert len(list((tmp_path / "out" / "d.report_files").glob("*.jpg"))) == 2
    assert api.denoise_report(tmp_path / "folder").path == tmp_path / "folder" / "report.html"
