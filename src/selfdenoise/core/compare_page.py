"""Before/after comparison pages: self-contained, offline HTML (inline CSS and vanilla JS, no network).

Each image gets a viewer: the right-hand version is drawn over the left-hand one and revealed from a
divider (dragged on the image, or moved with the keyboard-accessible range input below it); mouse wheel,
drag and the +/-/reset buttons zoom and pan both versions through one shared transform, so they stay
aligned. With more than two versions (noisy, several methods, clean) two selects choose each side.

Images are embedded as base64 PNG (``embed=True``: small crops) or written next to the page as JPEG
previews (at most ``max_side`` pixels on the long side, quality 92, no chroma subsampling) in
``<page stem>_files/``. Arrays are shown as 8-bit: float in [0, 1] through ``metrics.quantize_uint8``,
uint16 scaled by its full range; gray stays gray. The page reads ``#pos=25`` (divider at 25 %),
``zoom=2``, ``left=0`` and ``right=2`` (version indices) from its URL fragment or query.
"""
from __future__ import annotations

import base64
import html
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .errors import InputError
from .io import atomic_write, ensure_parent
from .metrics import quantize_uint8

#: Long side of a written preview, and the smallest width a viewer is shown at (small crops are enlarged).
MAX_SIDE = 2048
MIN_DISPLAY = 480
MAX_DISPLAY = 1280

STYLE = """
.sd-viewer{margin:1.2em 0 2em}
.sd-viewer h3{margin:.2em 0 .4em;font-size:1.05em;overflow-wrap:anywhere}
.sd-controls{display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:center;margin:0 0 .4em;font-size:14px}
.sd-controls button{min-width:2.2em;font-size:14px}
.sd-zoom{display:inline-flex;gap:.3em;align-items:center}
.sd-level{display:inline-block;min-width:3.2em;text-align:center;font-variant-numeric:tabular-nums}
.sd-stage{position:relative;overflow:hidden;background:#222;touch-action:none;user-select:none;cursor:grab;
 outline-offset:2px}
.sd-stage:active{cursor:grabbing}
.sd-layer{position:absolute;inset:0;overflow:hidden}
.sd-layer img{position:absolute;left:0;top:0;width:100%;height:100%;object-fit:contain;max-width:none;
 transform:var(--sd-t,none);transform-origin:0 0;image-rendering:auto;-webkit-user-drag:none}
.sd-px .sd-layer img{image-rendering:pixelated}
.sd-divider{position:absolute;top:0;bottom:0;width:0;border-left:2px solid #fff;margin-left:-1px;
 box-shadow:0 0 3px rgba(0,0,0,.8);cursor:ew-resize}
.sd-divider::before{content:"";position:absolute;top:0;bottom:0;left:-10px;width:20px}
.sd-grip{position:absolute;top:50%;left:-15px;width:26px;height:26px;margin-top:-13px;border-radius:50%;
 background:#fff;border:1px solid #333;box-shadow:0 0 4px rgba(0,0,0,.6)}
.sd-grip::before,.sd-grip::after{content:"";position:absolute;top:8px;border:5px solid transparent}
.sd-grip::before{left:1px;border-right:6px solid #333}
.sd-grip::after{right:1px;border-left:6px solid #333}
.sd-label{position:absolute;top:6px;max-width:45%;padding:2px 7px;border-radius:3px;background:rgba(0,0,0,.65);
 color:#fff;font:13px/1.4 sans-serif;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;pointer-events:none}
.sd-label-left{left:6px}
.sd-label-right{right:6px}
.sd-slider{display:block;margin:.5em 0 0;box-sizing:border-box}
.sd-help{font-size:13px;color:#555}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var MAX_ZOOM = 64;
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function options() {
    var p = new URLSearchParams(location.search);
    new URLSearchParams(location.hash.replace(/^#/, "")).forEach(function (v, k) { p.set(k, v); });
    function num(key, fallback, lo, hi) {
      var v = parseFloat(p.get(key));
      return isFinite(v) ? clamp(v, lo, hi) : fallback;
    }
    return {pos: num("pos", 50, 0, 100), zoom: num("zoom", 1, 1, MAX_ZOOM),
            left: num("left", -1, 0, 1e6), right: num("right", -1, 0, 1e6)};
  }
  function setup(v, opt) {
    var stage = v.querySelector(".sd-stage"), top = v.querySelector(".sd-top");
    var divider = v.querySelector(".sd-divider"), slider = v.querySelector(".sd-slider");
    var level = v.querySelector(".sd-level"), first = v.querySelector(".sd-layer img");
    var s = 1, x = 0, y = 0, drag = null;
    function view() {
      var w = stage.clientWidth, h = stage.clientHeight;
      s = clamp(s, 1, MAX_ZOOM);
      x = clamp(x, w * (1 - s), 0);
      y = clamp(y, h * (1 - s), 0);
      stage.style.setProperty("--sd-t", "translate(" + x + "px," + y + "px) scale(" + s + ")");
      var natural = first.naturalWidth || parseFloat(v.getAttribute("data-width")) || w;
      stage.classList.toggle("sd-px", w * s / natural > 1.01);
      v.setAttribute("data-zoom", String(Math.round(s * 1000) / 1000));
      level.textContent = Math.round(s * 100) + "%";
    }
    function zoomAt(f, cx, cy) {
      var ns = clamp(s * f, 1, MAX_ZOOM);
      x = cx - (cx - x) * ns / s;
      y = cy - (cy - y) * ns / s;
      s = ns;
      view();
    }
    function zoomCentre(f) { zoomAt(f, stage.clientWidth / 2, stage.clientHeight / 2); }
    function reset() { s = 1; x = 0; y = 0; view(); }
    function setPos(p) {
      p = clamp(p, 0, 100);
      slider.value = String(p);
      top.style.clipPath = "inset(0 0 0 " + p + "%)";
      divider.style.left = p + "%";
      slider.setAttribute("aria-valuetext", Math.round(p) + "%");
      v.setAttribute("data-pos", String(Math.round(p * 100) / 100));
    }
    function choose(sel) {
      var side = sel.getAttribute("data-side"), o = sel.options[sel.selectedIndex];
      var img = v.querySelector(".sd-img-" + side);
      img.src = o.getAttribute("data-src");
      img.alt = o.textContent;
      v.querySelector(".sd-label-" + side).textContent = o.textContent;
      slider.setAttribute("aria-label", "divider: " + v.querySelector(".sd-label-left").textContent +
                          " on the left, " + v.querySelector(".sd-label-right").textContent + " on the right");
    }
    function move(e) {
      var r = stage.getBoundingClientRect();
      if (drag.mode === "pos") {
        setPos((e.clientX - r.left) / r.width * 100);
      } else {
        x += e.clientX - drag.x;
        y += e.clientY - drag.y;
        drag.x = e.clientX;
        drag.y = e.clientY;
        view();
      }
    }
    slider.addEventListener("input", function () { setPos(parseFloat(slider.value)); });
    stage.addEventListener("wheel", function (e) {
      if (e.deltaY > 0 && s <= 1) return;  // zoomed out already: let the page scroll
      e.preventDefault();
      var r = stage.getBoundingClientRect(), d = e.deltaY * (e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 400 : 1);
      zoomAt(Math.exp(-clamp(d, -100, 100) * 0.003), e.clientX - r.left, e.clientY - r.top);
    }, {passive: false});
    stage.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      var onDivider = e.target.closest && e.target.closest(".sd-divider");
      drag = {mode: onDivider || s <= 1 ? "pos" : "pan", x: e.clientX, y: e.clientY};
      stage.setPointerCapture(e.pointerId);
      e.preventDefault();
      if (drag.mode === "pos") move(e);
    });
    stage.addEventListener("pointermove", function (e) { if (drag) move(e); });
    stage.addEventListener("pointerup", function () { drag = null; });
    stage.addEventListener("pointercancel", function () { drag = null; });
    stage.addEventListener("dblclick", reset);
    stage.addEventListener("keydown", function (e) {
      var step = 0.1 * stage.clientWidth, keys = {
        "+": function () { zoomCentre(1.5); }, "=": function () { zoomCentre(1.5); },
        "-": function () { zoomCentre(1 / 1.5); }, "0": reset,
        ArrowLeft: function () { x += step; view(); }, ArrowRight: function () { x -= step; view(); },
        ArrowUp: function () { y += step; view(); }, ArrowDown: function () { y -= step; view(); }};
      if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
    });
    v.querySelector(".sd-in").addEventListener("click", function () { zoomCentre(1.5); });
    v.querySelector(".sd-out").addEventListener("click", function () { zoomCentre(1 / 1.5); });
    v.querySelector(".sd-reset").addEventListener("click", reset);
    v.querySelectorAll("select.sd-pick").forEach(function (sel) {
      var want = opt[sel.getAttribute("data-side")];
      if (want >= 0 && want < sel.options.length) { sel.selectedIndex = Math.floor(want); choose(sel); }
      sel.addEventListener("change", function () { choose(sel); });
    });
    window.addEventListener("resize", view);
    first.addEventListener("load", view);
    setPos(opt.pos);
    reset();
    if (opt.zoom > 1) zoomCentre(opt.zoom);
    v.setAttribute("data-ready", "1");
  }
  var opt = options();
  document.querySelectorAll(".sd-viewer").forEach(function (v) { setup(v, opt); });
})();
"""

HELP = ("Drag the divider (or use the slider under each image) to compare; wheel or +/- to zoom, drag to pan "
        "when zoomed, double-click or reset to fit. Both sides always show the same region.")

_PAGE_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1400px;color:#111}"
             "h1{font-size:1.4em}code{background:#f4f4f4}")


def to_display(image) -> np.ndarray:
    """An image as 8-bit for display: (H, W) for gray, (H, W, 3) for colour. Float is taken in [0, 1]
    (``quantize_uint8``), uint16 is scaled by its full range, other integers by their own; alpha is dropped."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (2, 4):
        a = a[..., : a.shape[-1] - 1]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise InputError(f"cannot show an array of shape {a.shape} as an image")
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        a = a.astype(np.float32) / 65535.0
    elif np.issubdtype(a.dtype, np.integer) and a.dtype != np.uint8:  # other integers: their own range
        lo, hi = float(a.min()), float(a.max())
        a = (a.astype(np.float64) - lo) / max(hi - lo, 1.0)
    return quantize_uint8(a)


def _pil(image, max_side: int):
    from PIL import Image

    im = Image.fromarray(to_display(image))
    if max(im.size) > max_side:
        scale = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
    return im


def _png_data_uri(im) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:48] or "image"


def _display_width(width: int) -> int:
    """Small crops are enlarged by a whole factor (crisp pixels); large images are shown at most this wide."""
    return min(MAX_DISPLAY, width * max(1, MIN_DISPLAY // max(width, 1)))


def _pickers(labels: list[str], sources: list[str], left: int, right: int) -> str:
    if len(labels) <= 2:
        return ""
    out = []
    for side, chosen in (("left", left), ("right", right)):
        opts = "".join(f'<option value="{j}" data-src="{html.escape(src)}"{" selected" if j == chosen else ""}>'
                       f"{html.escape(label)}</option>" for j, (label, src) in enumerate(zip(labels, sources)))
        out.append(f'<label>{side} <select class="sd-pick" data-side="{side}">{opts}</select></label>')
    return "".join(out)


def viewer_html(name: str, labels: list[str], sources: list[str], size: tuple[int, int], *,
                left: int = 0, right: int = 1) -> str:
    """One viewer: ``labels[i]`` is shown from ``sources[i]`` (a URL or data URI); ``size`` is (width,
    height) of the images; ``left`` / ``right`` the versions shown first."""
    if len(labels) != len(sources) or len(labels) < 2:
        raise InputError(f"{name}: a comparison needs at least two versions, each with a label")
    if not (0 <= left < len(labels) and 0 <= right < len(labels)):
        raise InputError(f"{name}: left={left} / right={right} outside its {len(labels)} versions")
    w, h = size
    disp = _display_width(w)
    lab = {side: html.escape(labels[i]) for side, i in (("left", left), ("right", right))}
    img = {side: f'<img class="sd-img-{side}" alt="{lab[side]}" src="{html.escape(sources[i])}" draggable="false">'
           for side, i in (("left", left), ("right", right))}
    return (f'<section class="sd-viewer" data-width="{w}" data-height="{h}"><h3>{html.escape(name)}</h3>'
            f'<div class="sd-controls">{_pickers(labels, sources, left, right)}<span class="sd-zoom">'
            '<button type="button" class="sd-out" title="zoom out (-)" aria-label="zoom out">&minus;</button>'
            '<span class="sd-level">100%</span>'
            '<button type="button" class="sd-in" title="zoom in (+)" aria-label="zoom in">+</button> '
            '<button type="button" class="sd-reset" title="fit (0)">reset</button></span></div>'
            f'<div class="sd-stage" tabindex="0" aria-label="{html.escape(name)}: before / after" '
            f'style="width:min(100%,{disp}px);aspect-ratio:{w}/{h}">'
            f'<div class="sd-layer">{img["left"]}</div>'
            f'<div class="sd-layer sd-top" style="clip-path:inset(0 0 0 50%)">{img["right"]}</div>'
            '<div class="sd-divider" style="left:50%"><span class="sd-grip"></span></div>'
            f'<span class="sd-label sd-label-left">{lab["left"]}</span>'
            f'<span class="sd-label sd-label-right">{lab["right"]}</span></div>'
            '<input class="sd-slider" type="range" min="0" max="100" step="0.1" value="50" '
            f'aria-label="divider: {lab["left"]} on the left, {lab["right"]} on the right" '
            f'style="width:min(100%,{disp}px)"></section>')


def _check_versions(name: str, versions) -> list:
    shapes = {np.shape(a)[:2] for _, a in versions}
    if len(shapes) > 1:
        raise InputError(f"{name}: the versions to compare differ in size {sorted(shapes)}")
    return versions


def embedded_viewer(name: str, versions: list[tuple[str, np.ndarray]], *, left: int = 0, right: int = 1,
                    max_side: int = MAX_SIDE) -> str:
    """A viewer whose images are embedded as base64 PNG (small crops): ``versions`` is [(label, image)]."""
    ims = [_pil(a, max_side) for _, a in _check_versions(name, versions)]
    return viewer_html(name, [label for label, _ in versions], [_png_data_uri(im) for im in ims], ims[0].size,
                       left=left, right=right)


def page_html(title: str, body: str, intro: str = "") -> str:
    """A whole page around viewers (``body``); ``intro`` is HTML placed under the title."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
            f"<style>{_PAGE_CSS}{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{intro}"
            f'<p class="sd-help">{html.escape(HELP)}</p>{body}<script>{SCRIPT}</script></body></html>\n')


@dataclass
class ComparePage:
    """A comparison page filled image by image. ``add`` encodes (and, unless ``embed``, writes) that
    image's previews at once and keeps only its HTML, so a long run holds no images; ``write`` writes
    the page atomically. Previews go to ``<page stem>_files/`` next to the page."""

    path: Path
    title: str = "selfdenoise: before / after"
    embed: bool = False
    max_side: int = MAX_SIDE
    quality: int = 92
    intro: str = ""
    viewers: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def files_dir(self) -> Path:
        return self.path.with_name(self.path.stem + "_files")

    def add(self, name: str, versions: list[tuple[str, np.ndarray]], *, left: int = 0, right: int = 1) -> None:
        """Add one viewer: ``versions`` is [(label, image)], images (H, W[, C]) of one size."""
        if self.embed:
            self.viewers.append(embedded_viewer(name, versions, left=left, right=right, max_side=self.max_side))
            return
        ims = [_pil(a, self.max_side) for _, a in _check_versions(name, versions)]
        sources = []
        for j, im in enumerate(ims):
            fname = f"{len(self.viewers):04d}-{_safe(name)}-{j}.jpg"
            ensure_parent(self.files_dir / fname)
            atomic_write(self.files_dir / fname, lambda tmp, im=im: im.save(
                tmp, format="JPEG", quality=self.quality, subsampling=0, optimize=True))
            sources.append(f"{quote(self.files_dir.name)}/{quote(fname)}")
        self.viewers.append(viewer_html(name, [label for label, _ in versions], sources, ims[0].size,
                                        left=left, right=right))

    def html(self) -> str:
        return page_html(self.title, "".join(self.viewers), self.intro)

    def write(self) -> Path:
        """Write the page (atomically, creating its folder); return its path."""
        ensure_parent(self.path)
        text = self.html().encode()
        atomic_write(self.path, lambda tmp: Path(tmp).write_bytes(text))
        return self.path


def write_compare_page(path: str | os.PathLike, comparisons: list[dict], *, title: str = "selfdenoise: before / after",
                       embed: bool = False, max_side: int = MAX_SIDE, intro: str = "") -> Path:
    """Write a comparison page. ``comparisons`` is [{"name": str, "versions": [(label, image), ...],
    optional "left"/"right": version indices (default 0 and 1)}]; return the page's path."""
    page = ComparePage(Path(path), title=title, embed=embed, max_side=max_side, intro=intro)
    for c in comparisons:
        page.add(c["name"], c["versions"], left=c.get("left", 0), right=c.get("right", 1))
    return page.write()
