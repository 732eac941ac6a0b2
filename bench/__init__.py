"""Side-by-side benchmarks: each runs ours and a baseline in one run and prints the ratio (DESIGN.md §7).

A benchmark is a module of this package with ``main(argv: list[str]) -> int``; ``python -m bench`` runs them all,
``python -m bench NAME [options]`` runs one. Tests never assert wall-clock times; these numbers are for people.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

# Modules of this package that are helpers, not benchmarks.
_NOT_BENCHMARKS = frozenset({"common", "__main__"})


def available() -> list[str]:
    """The benchmark modules, in name order."""
    names = (m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]))
    return sorted(n for n in names if n not in _NOT_BENCHMARKS and not n.startswith("_"))
