"""README's Results table is written by make bench between two markers, from the benchmarks' rows."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from benchmarks import headline
from benchmarks.__main__ import SECTIONS
from benchmarks.headline import BEGIN, END, Headline, Section

REPO_ROOT = Path(__file__).resolve().parents[2]
ROWS = (Headline("speed", "**2.1×**", "≥ 2×: met", "python -m benchmarks.bench_x"),
        Headline("size", "3 MB", "—", "python -m benchmarks.bench_y"))


def test_the_table_replaces_what_stands_between_the_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{BEGIN}\n| old | table |\nold footer\n{END}\n\nafter\n")
    headline.rewrite(readme, headline.table(ROWS, "Figures from one run."))
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert "old" not in text
    assert "| speed | **2.1×** | ≥ 2×: met | `python -m benchmarks.bench_x` |" in text
    assert "Figures from one run." in text
    headline.rewrite(readme, headline.table(ROWS[:1], "again"))  # a second run replaces the first
    assert readme.read_text().count(BEGIN) == 1 and "| size |" not in readme.read_text()


@pytest.mark.parametrize("content", ["no markers", f"{BEGIN}\nonly the first", f"{END}\n{BEGIN}\n",
                                     f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n"])
def test_a_readme_without_its_markers_once_in_order_is_refused(tmp_path: Path, content: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(content)
    with pytest.raises(ValueError, match="markers once each, in order"):
        headline.rewrite(readme, "table")
    assert readme.read_text() == content


def test_readme_holds_the_markers_and_each_row_names_its_command() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    table = text.split(BEGIN)[1].split(END)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| what", "| ---"))]
    assert rows
    for row in rows:
        assert "`python -m " in row.rsplit("|", 2)[-2], row


@pytest.mark.parametrize("module", [module for module, _ in SECTIONS])
def test_every_benchmark_returns_a_section(module: str) -> None:
    main = importlib.import_module(f"benchmarks.{module}").main
    assert inspect.signature(main).return_annotation in ("Section", Section), module
