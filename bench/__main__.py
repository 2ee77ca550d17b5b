"""``python -m bench NAME [--quick]``: run one benchmark (or ``all``) and print JSON lines."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench.harness import emit, new_context


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in {"harness", "__main__"})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", help="benchmark name, or `all`; one of: " + ", ".join(available()))
    parser.add_argument("--quick", action="store_true", help="small data, for smoke tests")
    args = parser.parse_args(argv)
    names = available() if args.name == "all" else [args.name]
    for name in names:
        if name not in available():
            parser.error(f"unknown benchmark `{name}`; choose from {', '.join(available())}")
        module = importlib.import_module(f"bench.{name}")
        for row in module.run(new_context(quick=args.quick)):
            emit(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
