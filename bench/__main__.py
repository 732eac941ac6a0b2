"""``python -m bench`` runs every benchmark; ``python -m bench NAME [options]`` runs one, options going to it."""

from __future__ import annotations

import importlib
import sys

from bench import available


def _usage(names: list[str]) -> str:
    return (f"usage: python -m bench [NAME [options]]\n"
            f"benchmarks: {', '.join(names)}\n"
            f"options of one: python -m bench NAME --help")


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(_usage(names))
        return 0
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in names:
            print(f"bench: no benchmark named {name!r}\n{_usage(names)}", file=sys.stderr)
            return 2
        return _run(name, rest)
    if argv:
        print(f"bench: options need a benchmark name before them\n{_usage(names)}", file=sys.stderr)
        return 2
    worst = 0
    for name in names:
        worst = max(worst, _run(name, []))
    return worst


def _run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"bench.{name}")
    try:
        return int(module.main(argv))
    except KeyboardInterrupt:
        print(f"\nbench {name}: interrupted; the worker and servers it started were stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
