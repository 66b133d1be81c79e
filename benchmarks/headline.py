"""README's Results table: the headline rows each benchmark returns, written by ``make bench``.

Every benchmark's ``main`` returns a :class:`Section`: its markdown for benchmarks/results.md and
its headline rows (what, figure, target with met / not met, command). A full ``make bench`` run
writes them between README's two markers, so every figure there comes from the command beside it
and from one run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BEGIN = "<!-- results table: written by make bench (benchmarks/headline.py) from one run; do not edit by hand -->"
END = "<!-- end of the results table -->"


@dataclass(frozen=True)
class Headline:
    what: str
    figure: str
    target: str
    command: str


@dataclass(frozen=True)
class Section:
    text: str
    headlines: tuple[Headline, ...] = ()


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def table(headlines: Sequence[Headline], footer: str) -> str:
    lines = ["| what | figure | target | command |", "| --- | --- | --- | --- |"]
    lines += [f"| {h.what} | {h.figure} | {h.target} | `{h.command}` |" for h in headlines]
    return "\n".join([*lines, "", footer])


def rewrite(readme: Path, text: str) -> None:
    """Replace what stands between README's markers with ``text``; refuse when they are not there once."""
    content = readme.read_text()
    if content.count(BEGIN) != 1 or content.count(END) != 1 or content.index(BEGIN) > content.index(END):
        raise ValueError(f"{readme} must hold the results table's markers once each, in order: {BEGIN!r} ... {END!r}")
    before, rest = content.split(BEGIN)
    _, after = rest.split(END)
    readme.write_text(f"{before}{BEGIN}\n{text}\n{END}{after}")
