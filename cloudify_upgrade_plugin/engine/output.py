"""Transfer progress reporting: a bar on a terminal, rate-limited log lines otherwise.

``progress_reporter(name, action, ...)`` returns ``report(done_bytes, total_bytes)``, the
callback shape of ``cloudify_cli.utils.generate_progress_handler`` (and of the snapshot
transfer functions).  On a TTY, outside ``--json`` mode, it is that very handler (a bar like
``cfy snapshots download``).  Otherwise it logs ``Downloading x.zip: 40% (40.0 MiB of 100.0 MiB)``
through the plugin logger at most once per ``interval`` seconds or ``percent_step`` percent,
and always once when the transfer completes.
"""
import sys
import time

from cloudify_upgrade_plugin import log


def human_size(size):
    size = float(size or 0)
    if size < 1024:
        return '{0:d} B'.format(int(size))
    for unit in ('KiB', 'MiB', 'GiB', 'TiB'):
        size /= 1024.0
        if size < 1024 or unit == 'TiB':
            break
    return '{0:.1f} {1}'.format(size, unit)


class RateLimitedProgress:
    """Logs progress no more than every ``interval`` s or ``percent_step`` %."""

    def __init__(self, name, action='Transferring', interval=10.0, percent_step=10,
                 logger=None, clock=time.monotonic):
        self.name = name
        self.action = action
        self.interval = interval
        self.percent_step = percent_step
        self.logger = logger or log.get_logger()
        self.clock = clock
        self._last_time = None
        self._last_percent = None
        self._finished = False

    def __call__(self, done, total):
        if self._finished:
            return
        now = self.clock()
        complete = bool(total) and done >= total
        percent = int(100 * done / total) if total else None
        due = (self._last_time is None or now - self._last_time >= self.interval
               or (percent is not None and self._last_percent is not None
                   and percent >= self._last_percent + self.percent_step))
        if not (due or complete):
            return
        if self._last_time is None and not complete and done == 0 and total:
            # Record the start without a "0%" line.
            self._last_time, self._last_percent = now, 0
            return
        self._last_time, self._last_percent = now, percent
        if total:
            self.logger.info('%s %s: %d%% (%s of %s)', self.action, self.name,
                             min(percent, 100), human_size(done), human_size(total))
        else:
            self.logger.info('%s %s: %s so far', self.action, self.name, human_size(done))
        if complete:
            self._finished = True


def progress_reporter(name, action='Transferring', interval=10.0, percent_step=10,
                      tty=None, logger=None, clock=time.monotonic):
    """A ``report(done, total)`` callback suited to where the output goes (see module doc)."""
    if tty is None:
        tty = bool(getattr(sys.stdout, 'isatty', None) and sys.stdout.isatty())
    if tty and not log.json_mode():
        from cloudify_cli.utils import generate_progress_handler
        bar = generate_progress_handler(name, action)

        def report(done, total):
            if total:
                bar(done, total)
        return report
    return RateLimitedProgress(name, action, interval, percent_step, logger, clock)
