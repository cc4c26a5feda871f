"""The README's figures come from the committed result files: its results tables are generated from the
current results only, and every figure its text cites (a link to a result file and key) is that file's."""
import json
import re
from pathlib import Path

from selfdenoise.bench.summary import END, START, readme_figures, results_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def shown(text: str, value: float) -> bool:
    """The first number in ``text`` equals ``value`` rounded to the decimals shown."""
    m = re.search(r"-?\d+(?:\.(\d+))?", text)
    return m is not None and value is not None and float(m.group(0)) == round(value, len(m.group(1) or ""))


def test_results_tables_are_generated_from_the_current_results():
    text = README.read_text()
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == results_table(ROOT).strip(), "run: python benchmarks/results_table.py --write"


def test_every_figure_in_the_text_is_its_result_file():
    wrong = [f"[{t}]({p}#{k}) but the file says {v}" for t, p, k, v in readme_figures(README, ROOT) if not shown(t, v)]
    assert not wrong, "\n".join(wrong)


def test_the_figure_check_can_fail(tmp_path):
    folder = tmp_path / "benchmarks" / "results" / "p"
    folder.mkdir(parents=True)
    (folder / "m.json").write_text(json.dumps({"method": "m", "psnr": 31.216}))
    readme = tmp_path / "README.md"
    readme.write_text("[31.22 dB](benchmarks/results/p/m.json#psnr), [31.3 dB](benchmarks/results/p/m.json#psnr), "
                      "[1.0](benchmarks/results/p/gone.json#psnr)")
    checks = [shown(t, v) for t, _, _, v in readme_figures(readme, tmp_path)]
    assert checks == [True, False, False]


def test_the_table_says_what_trained_on_what(tmp_path):
    """A model trained on a transductive protocol's noisy test images says so; a peer shows its per-image
    budget; a dirty or exploratory run never reaches the table."""
    folder = tmp_path / "benchmarks" / "results" / "w2s-widefield"
    folder.mkdir(parents=True)
    common = {"protocol": "w2s-widefield", "dataset": "w2s", "n_images": 30, "every": 3, "ssim": 0.9,
              "per_image": [], "commit": "abc"}
    rows = {"ne2ne": {"psnr": 32.5, "train_seconds": 600.0}, "careamics-n2v2": {"psnr": 30.5, "peer": "CAREamics 0.3.5",
                                                                                  "budget_seconds": 40.0},
            "zero-shot": {"psnr": 29.0, "commit": "abc-dirty"}, "nlm": {"psnr": 26.0, "exploratory": True},
            "bm3d": {"psnr": 31.0, "failed": [{"name": "001_1", "error": "FloatingPointError"}]}}
    for method, row in rows.items():
        (folder / f"{method}.json").write_text(json.dumps({**common, "method": method, **row}))
    table = results_table(tmp_path)
    assert "30 images (1 in 3)" in table
    assert "| 10 min, transductive |" in table and "| 40 s on each image |" in table
    assert "zero-shot" not in table and "nlm" not in table and "bm3d" not in table


def test_the_table_names_each_commit_a_protocol_ran_from(tmp_path):
    folder = tmp_path / "benchmarks" / "results" / "oct-duke"
    folder.mkdir(parents=True)
    common = {"protocol": "oct-duke", "dataset": "duke", "n_images": 9, "ssim": 0.7, "per_image": []}
    for method, commit in (("n2n", "bbbbbbbbbb"), ("bm3d", "bbbbbbbbbb"), ("tcfl", "aaaaaaaaaa")):
        (folder / f"{method}.json").write_text(json.dumps({**common, "method": method, "psnr": 27.0, "commit": commit}))
    assert "commits bbbbbbbb (bm3d, n2n), aaaaaaaa (tcfl)" in results_table(tmp_path)
    (folder / "tcfl.json").unlink()
    assert "; commit bbbbbbbb," in results_table(tmp_path)
