"""`make bench` (tools/bench.py) cannot rot: every row measured on a tiny size (--quick) gives
figures, and the README section is replaced in place. No figure is judged: a slow machine passes."""
import importlib.util
import json
import subprocess
import sys

import pytest

from harness import ROOT

BENCH = ROOT / "tools" / "bench.py"
ROWS = {  # row -> a figure it must hold (a path in its JSON)
    "heap": ("mpy", "heap_k"), "rpc": ("cpu_ratio",), "safety": ("busy_ms", "p99"),
    "localauth": ("lookup_p50_us",), "smart": ("composite_ms", "median"), "startup": ("boot_mpy_s", "median"),
    "fleet": ("fit",),
    "web": ("mpy", "status"),
    "crypto": ("csr_sign_heap_b",),
    "meter": ("poll_bytes",),
    "cpu": ("adc_reads_per_s",),
}


def figure(row, path):
    for key in path:
        row = row[key]
    return row


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_run_gives_every_figure(tmp_path):
    out = tmp_path / "results.json"
    r = subprocess.run([sys.executable, str(BENCH), "--quick", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads(out.read_text())
    assert set(results["rows"]) == set(ROWS)
    for name, path in ROWS.items():
        value = figure(results["rows"][name], path)
        assert type(value) in (int, float) and value >= 0, (name, value)
    table = r.stdout.splitlines()
    assert table[0] == "| measure | result | how |" and len(table) == 2 + len(ROWS), r.stdout
    assert "failed" not in r.stdout


def test_readme_section_replaced_in_place(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_cli", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\ntext\n")
    results = {"date": "2025-01-01", "machine": {"arch": "x86_64", "cpu": "CPU", "cores": 2}}
    bench.update_readme(results, "| a |\n", readme)
    bench.update_readme(results, "| b |\n", readme)
    text = readme.read_text()
    assert text.startswith("# title\n\ntext\n\n## Benchmarks\n")
    assert text.count("## Benchmarks") == 1 and "| a |" not in text
    assert text.endswith(f"{bench.START}\nMeasured on 2025-01-01, x86_64, CPU, 2 cores:\n\n| b |\n{bench.END}\n")
