"""`python -m benchmarks [--list | NAME [ARGS...]]`: the dispatcher of the benchmarks.

With no argument every benchmark runs with its defaults (what `make bench` does); with a
NAME only that one runs and ARGS go to its `main(argv)` (`python -m benchmarks startup
--help`).  A benchmark is any module `benchmarks/<name>.py` (name without a leading `_`)
defining `main(argv) -> int`; the first line of its docstring is its description.  Names
may be written with dashes (`verify-heals` runs `benchmarks/verify_heals.py`).  Modules
without `main` are helpers of the others (`link`: the emulated network link).
"""
import importlib
import pkgutil
import sys

import benchmarks

USAGE = '''usage: python -m benchmarks [--list | NAME [ARGS...]]

Runs every benchmark (no argument) or the one named, passing ARGS to it.
Results are recorded in benchmarks/README.md.
'''


def names():
    """Module names of the benchmarks, sorted: the modules that define `main(argv)`
    (helpers start with `_` or have no `main`, like `link`)."""
    found = (m.name for m in pkgutil.iter_modules(benchmarks.__path__)
             if not m.name.startswith('_') and not m.ispkg)
    return sorted(name for name in found if callable(getattr(
        importlib.import_module('benchmarks.' + name), 'main', None)))


def load(name):
    module = importlib.import_module('benchmarks.' + name.replace('-', '_'))
    if not callable(getattr(module, 'main', None)):
        raise SystemExit('benchmarks.{0} has no main(argv)'.format(name))
    return module


def describe(name):
    doc = (load(name).__doc__ or '').strip()
    return doc.splitlines()[0] if doc else ''


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    available = names()
    if argv and argv[0] in ('-h', '--help', '--list'):
        if argv[0] != '--list':
            sys.stdout.write(USAGE + '\nbenchmarks:\n')
        for name in available:
            sys.stdout.write('  {0:<16} {1}\n'.format(name.replace('_', '-'), describe(name)))
        return 0
    if argv:
        name = argv[0].replace('-', '_')
        if name not in available:
            sys.stderr.write('unknown benchmark {0!r}; known: {1}\n'.format(
                argv[0], ', '.join(n.replace('_', '-') for n in available)))
            return 2
        return load(name).main(argv[1:]) or 0
    failed = []
    for name in available:
        sys.stdout.write('== benchmark {0}\n'.format(name.replace('_', '-')))
        sys.stdout.flush()
        if load(name).main([]):
            failed.append(name)
    if failed:
        sys.stderr.write('failed: {0}\n'.format(', '.join(failed)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
