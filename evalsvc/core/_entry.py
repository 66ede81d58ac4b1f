"""`python -m evalsvc.core._entry MODULE:FUNCTION ARG...`: how every child of core/_proc.py begins.

Imports MODULE and calls FUNCTION(*ARGS), decimal arguments as ints (they are descriptors and indexes).
Nothing imports this module, so the child's code runs under its own name, never as a second copy
named __main__ (whose pickled messages the parent could not read).
"""

import importlib
import sys


def _run(argv: list[str]) -> None:
    module, _, function = argv[0].partition(":")
    args = [int(a) if a.isdecimal() else a for a in argv[1:]]
    getattr(importlib.import_module(module), function)(*args)


if __name__ == "__main__":
    _run(sys.argv[1:])
