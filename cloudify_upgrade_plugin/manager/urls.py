"""How ids and query values go into a request to a manager.

``segment`` percent-encodes an id as exactly one path segment (issue 17 item 7: a snapshot,
execution, user or token id can never add a path, a query or a header line); ``query``
spells query values the way the REST service parses them (booleans ``true``/``false``,
lists repeated, None left out).
"""
from urllib.parse import quote


def segment(value) -> str:
    """``value`` as one URL path segment: every character but letters, digits and
    ``_.-~`` percent-encoded."""
    return quote(str(value), safe='')


def _query_value(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple, set)):
        return [_query_value(v) for v in value]
    return value


def query(params) -> dict:
    """``params`` as query values (None dropped)."""
    return {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
