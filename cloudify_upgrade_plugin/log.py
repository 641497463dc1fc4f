"""Logging and output through the host CLI.

cfy's ``dictConfig`` disables loggers made with ``getLogger(__name__)``, so everything in
this plugin logs through a child of ``cloudify.cli.main``.  With ``--json`` cfy sends that
logger to stderr and stdout carries exactly one JSON document (``emit_json``).
"""
import json
import logging
import sys

from cloudify_cli.logger import get_global_json_output

from cloudify_upgrade_plugin.engine.redact import (
    install_log_filter, install_record_factory, redact_text)

LOGGER_NAME = 'cloudify.cli.main.upgrade'
# Every record of the process (cfy's REST client logs request headers at -vvv) is redacted
# when it is created, from the moment the plugin's code is imported.
install_record_factory()


def get_logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    install_redaction(logger)
    return logger


def warn_always(message, *args) -> None:
    """A warning the operator must see even with ``--json`` (cfy raises its logger to ERROR
    there): logged as usual, and written to stderr when the logger would drop it."""
    logger = get_logger()
    logger.warning(message, *args)
    if json_mode() and not logger.isEnabledFor(logging.WARNING):
        sys.stderr.write('Warning: ' + redact_text(message % args) + '\n')
        sys.stderr.flush()


def install_redaction(logger=None) -> None:
    """Mask registered secrets (engine.redact) in every record of the plugin logger.

    The filter goes on the plugin logger and on the handlers of it and of its parents up to
    ``cloudify.cli.main`` (cfy re-creates those handlers whenever it configures logging, so
    this is re-applied, idempotently, on every ``get_logger()``).
    """
    logger = logger or logging.getLogger(LOGGER_NAME)
    install_log_filter(logger)
    parent = logger.parent
    while parent is not None and parent.name.startswith('cloudify.cli.main'):
        install_log_filter(parent, handlers_only=True)
        parent = parent.parent


def json_mode() -> bool:
    try:
        return bool(get_global_json_output())
    except Exception:
        return False


def emit_json(document, stream=None) -> None:
    """Write the command's single JSON document to stdout."""
    stream = stream or sys.stdout
    stream.write(json.dumps(document, sort_keys=True, default=str) + '\n')
    stream.flush()
