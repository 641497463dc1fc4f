"""Transfer progress like ``cfy snapshots download`` shows it.

``progress_reporter(path, action)`` returns ``progress(done, total)``: cfy's progress bar
(``cloudify_cli.utils.generate_progress_handler``) on a TTY, otherwise at most one log
line every ``interval`` seconds, plus the last one.  ``human_size`` formats byte counts.
"""
import os
import sys
import time
from typing import Callable, Optional

from cloudify_cli.utils import generate_progress_handler

from cloudify_upgrade_plugin.log import get_logger


def human_size(n) -> str:
    if n is None:
        return 'an unknown number of bytes'
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if n < 1024 or unit == 'TiB':
            return '{0:.1f} {1}'.format(n, unit) if unit != 'B' else '{0} B'.format(n)
        n /= 1024.0


def progress_reporter(path, action='Downloading', stream=None, interval=5.0,
                      clock=time.monotonic, logger=None) -> Callable[[int, Optional[int]], None]:
    """A ``progress(done, total)`` callback like ``cfy snapshots download`` shows.

    On a TTY it draws cfy's progress bar (``cloudify_cli.utils.generate_progress_handler``);
    otherwise it logs at most one line every ``interval`` seconds, plus the last one.
    ``total`` may be None (size not announced by the server).
    """
    stream = stream or sys.stdout
    logger = logger or get_logger()
    name = os.path.basename(path)
    bar = None
    if hasattr(stream, 'isatty') and stream.isatty():
        try:
            bar = generate_progress_handler(path, action)
        except Exception:
            bar = None
    state = {'last': None}

    def progress(done, total):
        if bar is not None and total:
            bar(done, total)
            return
        now = clock()
        finished = total is not None and done >= total
        if not finished and state['last'] is not None and now - state['last'] < interval:
            return
        state['last'] = now
        if total:
            logger.info('%s %s: %s of %s (%d%%)', action, name, human_size(done),
                        human_size(total),
                        int(100 * done / total))
        else:
            logger.info('%s %s: %s', action, name, human_size(done))
    return progress
