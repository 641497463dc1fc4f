"""The one way a test waits for something: ``wait_until(predicate, timeout, what)``.

Tests never sleep for a fixed time to let something happen; they poll a predicate (a file
exists, a journal line is written, a simulator received a request or holds a state, a
request gate was reached) until it is true.  The timeout is only a safety net against a
hung test, never an assertion about speed.  A failure names ``what`` was awaited, and,
with ``proc``, fails as soon as that process ended first (it can no longer happen).
"""
import time
from typing import Any, Callable, Optional

INTERVAL = 0.02   # seconds between two polls


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, *,
               interval: float = INTERVAL, proc: Any = None,
               describe: Optional[Callable[[], str]] = None) -> Any:
    """Poll ``predicate`` until it returns a true value, and return that value.

    Raises AssertionError naming ``what`` after ``timeout`` seconds, or as soon as ``proc``
    (a Popen) has ended while the predicate is still false.  ``describe()`` (optional) adds
    what helps to understand the failure (e.g. the process's output).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            problem = 'the process ended (rc {0}) before {1}'.format(proc.returncode, what)
            break
        if time.monotonic() > deadline:
            problem = 'timed out after {0}s waiting for {1}'.format(timeout, what)
            break
        time.sleep(interval)
    if describe is not None:
        problem += ':\n' + describe()
    raise AssertionError(problem)
