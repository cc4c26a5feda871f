"""Benchmark reports: a Markdown table and a self-contained HTML page (tables, for each crop a before/after
viewer with every panel selectable on either side plus the side-by-side panels, all embedded as base64
PNGs, an optional PSNR-vs-seconds plot).

``results`` maps a method name to a result dict as written by ``bench.run_protocol`` (``psnr``,
``ssim``, ``seconds_per_image``, ...). A method whose ``seconds_per_image`` is None (the noisy input)
is listed without timing. ``crops`` is a list of ``{"name": image name, "panels": [(label, uint8 array
(H, W) or (H, W, C)), ...]}``, typically noisy | each method | clean at one fixed location.
"""
from __future__ import annotations

import base64
import html
import io
import os
import re
from pathlib import Path

import numpy as np

from ..core import compare_page
from ..core.io import atomic_write


def _num(x, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def _seconds(x) -> str:
    return "–" if x is None else (f"{x:.2f}" if x >= 0.1 else f"{x:.2g}")


def _ratio(x) -> str:
    return f"{x:.0f}x" if x >= 10 else (f"{x:.1f}x" if x >= 0.1 else f"{x:.2g}x")


def _rows(results: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    bm3d = (results.get("bm3d") or {}).get("seconds_per_image")
    header = ["method", "PSNR (dB)", "SSIM", "GCMSE", "seconds / image", "speed-up vs BM3D", "peak MiB", "sigma"]
    rows = []
    for name, r in results.items():
        sec = r.get("seconds_per_image")
        ratio = _ratio(bm3d / sec) if (bm3d and sec) else "–"
        sigma = r.get("sigma")
        rows.append([name, _num(r.get("psnr"), ".2f"), _num(r.get("ssim"), ".4f"), _num(r.get("gcmse"), ".3g"),
                     _seconds(sec), ratio, _num(r.get("peak_memory_mb"), ".0f"),
                     "–" if sigma is None else (f"{sigma:g}" if isinstance(sigma, (int, float)) else str(sigma))])
    return header, rows


def _camera_rows(results: dict[str, dict]) -> tuple[list[str], list[list[str]]] | None:
    with_cam = {m: r["per_camera"] for m, r in results.items() if r.get("per_camera")}
    if not with_cam:
        return None
    cameras = sorted({c for per in with_cam.values() for c in per})
    header = ["camera", "images"] + [f"{m} PSNR / SSIM" for m in with_cam]
    rows = []
    for c in cameras:
        n = next((per[c]["n_images"] for per in with_cam.values() if c in per), 0)
        cells = []
        for per in with_cam.values():
            g = per.get(c)
            cells.append("–" if g is None else f"{_num(g['psnr'], '.2f')} / {_num(g['ssim'], '.4f')}")
        rows.append([c, str(n)] + cells)
    return header, rows


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` square of an (H, W[, C]) image (smaller images: their central square)."""
    h, w = a.shape[:2]
    s = min(size, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return a[top:top + s, left:left + s]


def _rgb(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float64), 0, 1) * 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[..., None]
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a[..., :3]


def png_bytes(a: np.ndarray) -> bytes:
    """PNG encoding of a uint8 (or float [0, 1]) image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_rgb(a)).save(buf, format="PNG")
    return buf.getvalue()


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def compose(panels: list[tuple[str, np.ndarray]], gap: int = 4, label_size: int | None = None) -> np.ndarray:
    """Side-by-side panels, each with its label above it, on white: uint8 (H, W, 3)."""
    from PIL import Image, ImageDraw

    imgs = [_rgb(a) for _, a in panels]
    h = max(i.shape[0] for i in imgs)
    size = label_size or max(11, min(24, h // 14))
    bar = size + 8
    width = sum(i.shape[1] for i in imgs) + gap * (len(imgs) - 1)
    canvas = Image.new("RGB", (width, h + bar), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(size)
    x = 0
    for (label, _), img in zip(panels, imgs):
        canvas.paste(Image.fromarray(img), (x, bar))
        draw.text((x + 3, 3), label, fill="black", font=font)
        x += img.shape[1] + gap
    return np.asarray(canvas)


def _plot_png(results: dict[str, dict], curves: dict[str, list[tuple[float, float]]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, pts in curves.items():
        if pts:
            s, p = zip(*sorted(pts))
            ax.plot(s, p, marker=".", label=name)
    for name, r in results.items():
        if r.get("seconds_per_image") and r.get("psnr") is not None and name not in curves:
            ax.plot([r["seconds_per_image"]], [r["psnr"]], "o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per image")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "image"


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child,th:first-child"
        "{text-align:left}th{background:#eee}figure{display:inline-block;margin:2px;text-align:center}"
        "figcaption{font-size:12px}img{image-rendering:pixelated}code{background:#f4f4f4}")


def write_report(out_dir: str | os.PathLike, protocol: str, results: dict[str, dict],
                 crops: list[dict] | None = None, *, curves: dict[str, list[tuple[float, float]]] | None = None,
                 title: str | None = None) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` (plus the crop montages and the plot as PNG files the
    Markdown links to) into ``out_dir``; return their paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(results.values()), {})
    title = title or f"selfdenoise benchmark: {protocol}" + (f" ({first['dataset']})" if first.get("dataset") else "")
    facts = [("images", first.get("n_images")), ("noise", first.get("noise")), ("seed", first.get("seed")),
             ("device", first.get("device")), ("commit", first.get("commit")), ("date", first.get("date")),
             ("peak memory", first.get("peak_memory_source"))]
    facts = [(k, v) for k, v in facts if v is not None]
    command = first.get("command")
    header, rows = _rows(results)
    cam = _camera_rows(results)
    paths: dict[str, Path] = {}

    md = [f"# {title}", ""]
    md += [f"- {k}: {v}" for k, v in facts]
    if command:
        md.append(f"- command: `{command}`")
    md += ["", "Speed-up vs BM3D = BM3D seconds / method seconds, both measured in this run.", "",
           _md_table(header, rows), ""]
    if cam:
        md += ["## Per camera", "", _md_table(*cam), ""]
    html_crops = []
    if crops:
        md += ["## Crops (centre of the image)", ""]
        for c in crops:
            fname = f"crop-{_safe(c['name'])}.png"
            _atomic_write(out / fname, png_bytes(compose(c["panels"])))
            paths[f"crop:{c['name']}"] = out / fname
            md += [f"![{c['name']}]({fname})", ""]
            figs = "".join(
                f"<figure><img alt=\"{html.escape(label)}\" src=\"data:image/png;base64,"
                f"{base64.b64encode(png_bytes(a)).decode()}\"><figcaption>{html.escape(label)}</figcaption></figure>"
                for label, a in c["panels"])
            viewer = (compare_page.embedded_viewer(c["name"], c["panels"], left=0, right=1) if len(c["panels"]) > 1
                      else f"<h3>{html.escape(c['name'])}</h3>")
            html_crops.append(f"{viewer}<div>{figs}</div>")
    plot_html = ""
    if curves:
        png = _plot_png(results, curves)
        _atomic_write(out / "psnr_vs_seconds.png", png)
        paths["plot"] = out / "psnr_vs_seconds.png"
        md += ["## PSNR vs time", "", "![PSNR vs seconds](psnr_vs_seconds.png)", ""]
        plot_html = ("<h2>PSNR vs time</h2><img alt=\"PSNR vs seconds\" src=\"data:image/png;base64,"
                     f"{base64.b64encode(png).decode()}\">")

    fact_html = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in facts)
    if command:
        fact_html += f"<li>command: <code>{html.escape(command)}</code></li>"
    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}{compare_page.STYLE if html_crops else ''}</style></head>"
            f"<body><h1>{html.escape(title)}</h1><ul>{fact_html}</ul>"
            "<p>Speed-up vs BM3D = BM3D seconds / method seconds, both measured in this run.</p>"
            + _html_table(header, rows)
            + (f"<h2>Per camera</h2>{_html_table(*cam)}" if cam else "")
            + (f"<h2>Crops (centre of the image)</h2><p class=\"sd-help\">{html.escape(compare_page.HELP)}</p>"
               f"{''.join(html_crops)}<script>{compare_page.SCRIPT}</script>" if html_crops else "")
            + plot_html + "</body></html>\n")
    _atomic_write(out / "report.md", ("\n".join(md) + "\n").encode())
    _atomic_write(out / "report.html", page.encode())
    paths["md"], paths["html"] = out / "report.md", out / "report.html"
    return paths
