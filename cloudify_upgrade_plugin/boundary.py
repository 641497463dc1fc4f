"""The one error boundary of every `cfy upgrade` command.

``boundary`` turns an ``UpgradeError`` into an ``Error [id]`` line, its hints, the JSON
document (``--json``) and its exit code (docs/cli-contract.md 'Exit codes'); a full local
disk, an unwritable local file, Ctrl-C outside a step and anything unexpected become
``UpgradeError`` first (never a traceback: that goes to the debug log); a command's
``Outcome`` gives the exit code of a command that returns.
"""
import errno
import functools
import sys
from typing import Callable

import click

from cloudify_upgrade_plugin import log
from cloudify_upgrade_plugin.errors import EXIT_OK, Interrupted, UpgradeError


def boundary(func) -> Callable:
    """Turn UpgradeError into a message, hints, a JSON document and an exit code; exit
    with the code of the ``Outcome`` a command returns."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            outcome = func(*args, **kwargs)
        except UpgradeError as error:
            logger = log.get_logger()
            logger.error('Error [%s]: %s', error.error_id, error.message)
            if error.possible_solutions:
                logger.error('Possible solutions:')
                for hint in error.possible_solutions:
                    logger.error('  - %s', hint)
            if log.json_mode():
                document = {'error': error.to_dict()}
                document.update(error.document or {})
                log.emit_json(document)
            sys.exit(error.exit_code)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                return _disk_full(error)
            if error.filename is not None:
                return boundary(_raise)(_local_error(error))
            return _unexpected(error)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise       # click's own usage errors and exits keep their exit codes
        except KeyboardInterrupt:       # Ctrl-C outside a step (a step's is Interrupted)
            return boundary(_raise)(Interrupted(
                'The command was interrupted; run the same command again to resume (no '
                'step was running: nothing was left half-done).'))
        except Exception as error:      # a bug, or an answer nobody expected: no traceback
            return _unexpected(error)
        exit_code = getattr(outcome, 'exit_code', EXIT_OK)
        if exit_code != EXIT_OK:
            sys.exit(exit_code)
        return outcome
    return wrapper


def _disk_full(error):
    """Last resort for a full local disk met outside a step (journal, workspace files)."""
    full = UpgradeError(
        'The local disk is full: {0}'.format(error), error_id='local-disk-full',
        hints=['Free space where the cfy workdir is (or set CFY_WORKDIR to a bigger disk), '
               'then run the same command again: finished steps are not redone.'])
    return boundary(_raise)(full)


def _unexpected(error):
    """Last resort: an ``Error [unexpected-error]`` line, the traceback in the debug log."""
    log.get_logger().debug('unexpected error', exc_info=True)
    return boundary(_raise)(UpgradeError(
        'Unexpected {0}: {1}'.format(type(error).__name__, error),
        error_id='unexpected-error',
        hints=['Run the same command again with -vvv: the traceback goes to the log '
               '(cfy\'s cli.log); report it with the command line.',
               'Nothing is lost: the journal says which steps finished, and the command '
               'resumes from there.']))


def _local_error(error):
    """A local file that cannot be read or written (a read-only workdir, a permission)."""
    where = error.filename or 'a local file'
    return UpgradeError(
        'Cannot use {0}: {1}'.format(where, error.strerror or error),
        error_id='local-write-failed' if error.errno in (errno.EACCES, errno.EPERM,
                                                         errno.EROFS) else 'local-io-failed',
        hints=['The cfy workdir (CFY_WORKDIR, default ~/.cloudify) must be writable by this '
               'user: check its permissions and mount, or point CFY_WORKDIR elsewhere.',
               'Then run the same command again: finished steps are not redone.'])


def _raise(error):
    raise error
