"""Logging and output through the host CLI.

cfy's ``dictConfig`` disables loggers made with ``getLogger(__name__)``, so everything in
this plugin logs through a child of ``cloudify.cli.main``.  With ``--json`` cfy sends that
logger to stderr and stdout carries exactly one JSON document (``emit_json``).
"""
import json
import logging
import sys

LOGGER_NAME = 'cloudify.cli.main.upgrade'


def get_logger():
    return logging.getLogger(LOGGER_NAME)


def json_mode():
    try:
        from cloudify_cli.logger import get_global_json_output
        return bool(get_global_json_output())
    except Exception:
        return False


def emit_json(document, stream=None):
    """Write the command's single JSON document to stdout."""
    stream = stream or sys.stdout
    stream.write(json.dumps(document, sort_keys=True, default=str) + '\n')
    stream.flush()
