"""What a manager's JSON answers must look like before the plugin reads them.

A proxy, another service or a hostile server can answer with JSON of any shape; the plugin
reads only what a Cloudify Manager sends (issue 17 item 8): ``field`` (one field of an
object, of one type), ``page`` (a list answer: ``items`` a list of objects,
``metadata.pagination.total`` a number or absent).  Anything else is ``bad_answer``: an
``UpgradeError`` with the id ``manager-bad-answer`` naming the manager and the call, never a
``TypeError`` later on.
"""
from typing import Any, List, Optional, Tuple

from cloudify_upgrade_plugin.errors import UpgradeError

_KIND_NAMES = {str: 'a string', int: 'a number', dict: 'an object', list: 'a list'}


def bad_answer(label: str, what: str, why: str) -> UpgradeError:
    """``manager-bad-answer``: ``label`` answered ``what`` with ``why``."""
    return UpgradeError(
        '{0} answered {1} with {2}.'.format(label, what, why),
        error_id='manager-bad-answer', details={'manager': label},
        hints=['Check that the profile points at a Cloudify Manager\'s REST API and not at a '
               'proxy or another service (`cfy profiles show-current`).'])


def not_json(label: str, what: str, api_prefix: str) -> UpgradeError:
    """A 2xx answer that is not JSON: the web UI, not the REST API (behaviour §2.1)."""
    return UpgradeError(
        '{0} did not answer {1} with JSON; is {2} the right API prefix?'.format(
            label, what, api_prefix),
        error_id='manager-bad-answer', details={'manager': label})


def of_type(label: str, what: str, result: Any, kind: Optional[type]) -> Any:
    """``result`` when it is a ``kind`` (None: anything; an empty answer always passes)."""
    if kind is not None and result is not None and not isinstance(result, kind):
        raise bad_answer(label, what, 'a JSON {0} instead of {1}'.format(
            type(result).__name__, _KIND_NAMES.get(kind, kind.__name__)))
    return result


def field(label: str, document: Any, name: str, kind: type, what: str) -> Any:
    """``document[name]`` when ``document`` is an object and the value a ``kind``."""
    value = document.get(name) if isinstance(document, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_answer(label, what, '"{0}" {1} instead of {2}'.format(
            name, 'missing' if value is None else 'a ' + type(value).__name__,
            _KIND_NAMES.get(kind, kind.__name__)))
    return value


def page(label: str, answer: Any, what: str) -> Tuple[List[dict], Optional[int]]:
    """(items, total) of a list answer whose shape was checked."""
    answer = answer or {}
    if not isinstance(answer, dict):
        raise bad_answer(label, what, 'a JSON {0} instead of an object'.format(
            type(answer).__name__))
    items = answer.get('items') or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise bad_answer(label, what, '"items" that is not a list of objects')
    metadata = answer.get('metadata') or {}
    pagination = metadata.get('pagination') if isinstance(metadata, dict) else None
    if pagination is not None and not isinstance(pagination, dict):
        raise bad_answer(label, what, 'a "metadata.pagination" that is not an object')
    total = (pagination or {}).get('total')
    if total is not None and (isinstance(total, bool) or not isinstance(total, int)):
        raise bad_answer(label, what, 'a "total" that is not a number')
    return items, total
