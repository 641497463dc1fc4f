"""The pace of every wait: an adaptive poll interval with a deadline, and progress lines.

``Poll`` sleeps fast at first and backs off to a cap, over an injectable clock and sleep
(tests never really wait); ``Progress`` logs where a long wait stands at least every
``PROGRESS_EVERY`` seconds; ``duration`` says how long in words an operator reads.
"""
import time
from typing import Callable, Optional

from cloudify_upgrade_plugin.log import get_logger

# The adaptive poll of every wait: first after POLL_START s, x POLL_FACTOR, capped.
POLL_START = 0.25
POLL_CAP = 2.0
POLL_FACTOR = 1.5
# A long wait says where it stands at least this often (seconds).
PROGRESS_EVERY = 30.0


class Poll:
    """Adaptive poll interval and deadline over an injectable clock."""

    def __init__(self, timeout: Optional[float], clock: Optional[Callable[[], float]],
                 sleep: Optional[Callable[[float], None]], start: float, cap: float,
                 factor: float):
        self.clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self.started = self.clock()
        self.deadline = None if timeout is None else self.started + float(timeout)
        self.interval = start
        self.cap = cap
        self.factor = factor

    def elapsed(self) -> float:
        return self.clock() - self.started

    def expired(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` (no longer than the deadline), leaving the interval as it is."""
        if self.deadline is not None:
            seconds = max(0.0, min(seconds, self.deadline - self.clock()))
        self._sleep(seconds)

    def sleep(self) -> None:
        delay = self.interval
        if self.deadline is not None:
            delay = max(0.0, min(delay, self.deadline - self.clock()))
        self._sleep(delay)
        self.interval = min(self.cap, self.interval * self.factor)


class Progress:
    """A log line at least every ``every`` seconds of a wait (``reset`` on news)."""

    def __init__(self, poll: Poll, every: float):
        self.poll = poll
        self.every = every
        self.last = poll.clock()

    def reset(self) -> None:
        self.last = self.poll.clock()

    def tick(self, template: str, *args) -> None:
        """Log ``template`` when ``every`` seconds passed; a None argument is replaced by
        the time waited so far."""
        if self.poll.clock() - self.last < self.every:
            return
        self.last = self.poll.clock()
        waited = duration(self.poll.elapsed())
        get_logger().info(template, *[waited if a is None else a for a in args])


def duration(seconds: float) -> str:
    """'45s', '2m05s': how a wait says how long it has waited."""
    seconds = int(seconds)
    return '{0}m{1:02d}s'.format(seconds // 60, seconds % 60) if seconds >= 60 else \
        '{0}s'.format(seconds)
