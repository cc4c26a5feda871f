"""Benchmarks: the protocols of ``benchmarks.md`` as data, the runner (plan -> run -> write), the peer
tools, the folder evaluator, provenance, reports, the README's results tables and the demo. Every method
runs through the public API, so a benchmark measures exactly what a user gets."""
from .demo import run_demo
from .evaluate import evaluate_folders
from .landmarks_synth import run_landmarks
from .peers import PEERS
from .protocols import BASELINES, DATASET_METHODS, PROTOCOLS, SPLITS, Protocol, TestSet, result_dir, test_pair
from .provenance import PeakMemory, device_description, git_commit
from .results import METRIC_KEYS, write_json
from .runner import run_protocol
from .summary import readme_figures, results_table, write_readme_table

__all__ = ["run_protocol", "run_landmarks", "run_demo", "evaluate_folders", "PROTOCOLS", "SPLITS", "PEERS",
           "Protocol", "TestSet", "BASELINES", "DATASET_METHODS", "METRIC_KEYS", "result_dir", "test_pair",
           "PeakMemory", "device_description", "git_commit", "write_json", "results_table",
           "write_readme_table", "readme_figures"]
