"""Render the README's results tables from the current benchmark result files (``selfdenoise.bench.summary``).

    python benchmarks/results_table.py            # print the tables
    python benchmarks/results_table.py --write    # replace them between the markers in README.md
"""
from __future__ import annotations

import argparse
from pathlib import Path

from selfdenoise.bench.summary import results_table, write_readme_table

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update README.md in place")
    if ap.parse_args().write:
        write_readme_table(ROOT / "README.md", ROOT)
    else:
        print(results_table(ROOT), end="")


if __name__ == "__main__":
    main()
