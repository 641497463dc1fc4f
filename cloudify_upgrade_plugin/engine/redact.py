"""Redaction: the one place that decides what counts as a secret before anything is persisted.

``redact(obj)`` returns a deep copy of ``obj`` in which

- the value of every key that names a secret (password, passwd, token, secret, key, salt,
  encryption, authorization, private, cookie, credential, the rest-security ``encoding_*``
  values, a bare ``hash``) is replaced by ``'***'`` (keys that count things, like
  ``secrets_count`` or ``num_tokens``, are kept);
- every registered secret string (``register_secret``: the manager passwords the plugin read,
  tokens, rest-security values) is replaced by ``'***'`` inside any string, dict key included,
  as a whole value only, so that ordinary words are never mangled (issue 17 item 12):

  - a *strong* secret (16 characters or more, or 8 or more with a character that is not a
    letter: tokens, keys, generated or real passwords) is masked wherever it appears, even
    inside a longer word (no ordinary word contains it, and a secret glued to other text is
    still a leak);
  - a *weak* one (``admin``, ``x``, ``password``: a word that ordinary text also uses) is
    masked where it stands as a value: a whole string equal to it, quoted (``'x'``,
    ``"x"``, also JSON-escaped), after ``=`` (``password=x&``), after ``key:`` without a
    space (``admin:x@host``), after a secret-looking name and ``:`` or ``=``
    (``password: x``), and as URL userinfo (``https://admin:x@host``); each time only when
    nothing word-like follows (``password=xy`` is not ``x``).  "the admin password" keeps
    its words.

Secret *names* are not secrets: under a key listed in ``NAME_LIST_KEYS`` (``secrets``,
``secret_keys``, ``secret_names``, ``keys``) the value is kept, so an inventory can record
``{"secrets": ["db_pw"]}``; inside such a value a dict keeps its ``key``/``id``/``name`` fields
and loses its ``value`` field.

``RedactingFilter`` applies the same rules to log records; ``install_log_filter(logger)`` puts it
on a logger and on that logger's handlers (``cloudify_upgrade_plugin.log.install_redaction``
does this for the plugin logger).

Log records also lose credentials the plugin never registered (issue 17 item 1: cfy's REST
client logs every request header, and the answer that carries a new token, at DEBUG):
``mask_credentials`` masks the value of an ``Authentication-Token``, ``Authorization``,
``API-Authentication-Token`` or ``Execution-Token`` header however it is written
(``Name: value``, ``Setting `Name` header: value``, ``'Name': 'value'``; an
``Authorization`` keeps its scheme word), the secret part of a 7.0 token
(``ctok-<id>-***``) and the ``value``, ``password``, ``token``, ``secret_key`` and
``hash_salt`` fields of JSON or Python text.  ``install_record_factory()`` applies it, with
the registered secrets, to every log record of the process when it is created, whichever
logger and handler it goes to (cfy's own loggers included).
"""
import json
import logging
import re
import threading
from typing import Any, Set
from urllib.parse import quote

MASK = '***'

_SENSITIVE_KEY = re.compile(
    r'passw|passwd|pwd|token|secret|key|salt|encryption|authori[sz]ation|private|cookie|'
    r'credential|^encoding_(alphabet|block_size|min_length)$|^hash$|_hash$',
    re.IGNORECASE)

# Keys that hold a number of things, never a secret ("secrets_count", "num_tokens").
_COUNT_KEY = re.compile(r'(^|_)(count|counts|total)$|^(num|count)_', re.IGNORECASE)

# Keys whose value lists secret *names* (kept), not secret values.
NAME_LIST_KEYS = frozenset(['secrets', 'secret_keys', 'secret_names', 'keys', 'secrets_keys'])
# Inside a secret-name list, these fields of a dict are names, not values.
_NAME_FIELDS = frozenset(['key', 'id', 'name', 'tenant', 'tenant_name', 'visibility',
                          'created_at', 'updated_at', 'created_by'])

_lock = threading.Lock()
_registered = set()
_pattern = None


def register_secret(value) -> None:
    """Remember a secret string for the life of the process; it is masked everywhere."""
    global _pattern
    if value is None:
        return
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    value = str(value)
    if not value:
        return
    with _lock:
        if value in _registered:
            return
        _registered.add(value)
        _pattern = _compile(_registered)


def registered_secrets() -> Set[str]:
    """A copy of the registered secrets (for tests that grep files for them)."""
    with _lock:
        return set(_registered)


def clear_registered_secrets() -> None:
    """Forget every registered secret (tests only)."""
    global _pattern
    with _lock:
        _registered.clear()
        _pattern = None


def is_strong(value: str) -> bool:
    """A secret no ordinary text contains: masked even inside a longer word."""
    return len(value) >= 16 or (len(value) >= 8 and any(not c.isalpha() for c in value))


class _Masker:
    """The masking rules for one set of secrets (see the module docstring)."""

    def __init__(self, values):
        values = sorted(set(values), key=len, reverse=True)  # a longer secret wins
        strong = [v for v in values if is_strong(v)]
        weak = [v for v in values if not is_strong(v)]
        self.whole = frozenset(values)
        self.strong = re.compile('|'.join(re.escape(v) for v in strong)) if strong else None
        self.weak = None
        if weak:
            forms = set()
            for value in weak:
                forms.update((value, json.dumps(value)[1:-1], quote(value, safe='')))
            alternatives = '|'.join(re.escape(v) for v in sorted(forms, key=len, reverse=True))
            end = r'(?![\w])'
            self.weak = re.compile(
                r'(?P<q>[\'"])(?:{0})(?P=q)'
                r'|(?P<eq>=\s*)(?:{0}){1}'
                r'|(?P<colon>(?<=\w):)(?:{0})(?=[@/\s\'",;)}}\]]|$)'
                r'|(?P<named>(?i:passw\w*|pwd|token|secret\w*|credential\w*|key)[\'"]?\s*'
                r'[:=]\s*)(?:{0}){1}'
                r'|(?P<url>://(?:[^\s/@:]*:)?)(?:{0})(?=@)'.format(alternatives, end))

    def _weak_sub(self, match):
        quote_char = match.group('q')
        if quote_char:
            return quote_char + MASK + quote_char
        prefix = next(g for g in (match.group('eq'), match.group('colon'),
                                  match.group('named'), match.group('url')) if g is not None)
        return prefix + MASK

    def sub(self, text):
        if text in self.whole or text.strip() in self.whole:
            return MASK
        if self.strong is not None:
            text = self.strong.sub(MASK, text)
        if self.weak is not None:
            text = self.weak.sub(self._weak_sub, text)
        return text


def _compile(values):
    return _Masker(values)


def is_sensitive_key(key) -> bool:
    """True when ``key`` names a value that must never be persisted."""
    if not isinstance(key, str):
        return False
    if key.lower() in NAME_LIST_KEYS or _COUNT_KEY.search(key):
        return False
    return bool(_SENSITIVE_KEY.search(key))


def redact_text(text, secrets=()) -> str:
    """Mask every registered secret (and every string in ``secrets``) inside ``text``."""
    if not isinstance(text, str) or not text:
        return text
    pattern = _pattern_for(secrets)
    if pattern is None:
        return text
    return pattern.sub(text)


def _pattern_for(secrets):
    extra = [str(s) for s in (secrets or ()) if s]
    with _lock:
        if not extra:
            return _pattern
        return _compile(_registered.union(extra))


def redact(obj, secrets=()) -> Any:
    """A deep copy of ``obj`` with secret values masked (see the module docstring)."""
    return _redact(obj, _pattern_for(secrets), in_names=False)


def _mask_value(value):
    if value is None or value == '':
        return value
    return MASK


def _redact(obj, pattern, in_names):
    if isinstance(obj, dict):
        result = {}
        for key, value in obj.items():
            new_key = _sub(pattern, key) if isinstance(key, str) else key
            if in_names and key in _NAME_FIELDS:
                result[new_key] = _redact(value, pattern, in_names=False)
            elif in_names and key == 'value':
                result[new_key] = _mask_value(value)
            elif isinstance(key, str) and key.lower() in NAME_LIST_KEYS:
                result[new_key] = _redact(value, pattern, in_names=True)
            elif is_sensitive_key(key):
                result[new_key] = _mask_value(value)
            else:
                # Below a secret-name list (e.g. per tenant) "value" stays a secret value.
                result[new_key] = _redact(value, pattern, in_names=in_names)
        return result
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = [_redact(item, pattern, in_names) for item in obj]
        return tuple(items) if isinstance(obj, tuple) else items
    if isinstance(obj, str):
        return _sub(pattern, obj)
    if isinstance(obj, bytes):
        return _sub(pattern, obj.decode('utf-8', 'replace'))
    return obj


def _sub(pattern, text):
    if pattern is None or not text:
        return text
    return pattern.sub(text)


_HEADER_VALUE = re.compile(
    r'(?i)\b((?:api-)?authentication-token|(?:proxy-)?authorization|execution-token)'
    r'([`\'"]?\s*(?:header)?\s*[:=]\s*[\'"]?)((?:basic|bearer|token|negotiate)\s+)?'
    r'([^\s\'",;}]+)')
_DB_TOKEN = re.compile(r'\b(ctok-[A-Za-z0-9]+-)[A-Za-z0-9]{8,}')
_SECRET_FIELD = re.compile(
    r'(["\'](?:value|password|new_password|token|secret_key|hash_salt)["\']\s*:\s*)'
    r'(["\'])((?:(?!\2)[^\\]|\\.)*)\2')


def mask_credentials(text) -> str:
    """``text`` without header credentials, 7.0 token secrets and secret JSON fields."""
    if not isinstance(text, str) or not text:
        return text
    text = _HEADER_VALUE.sub(lambda m: m.group(1) + m.group(2) + (m.group(3) or '') + MASK,
                             text)
    text = _DB_TOKEN.sub(lambda m: m.group(1) + MASK, text)
    return _SECRET_FIELD.sub(lambda m: m.group(1) + m.group(2) + MASK + m.group(2), text)


def _redact_record(record, pattern) -> None:
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    masked = mask_credentials(_sub(pattern, message))
    if masked != message:
        record.msg = masked
        record.args = None
    text = record.exc_text
    if record.exc_info and not text:
        text = logging.Formatter().formatException(record.exc_info)
    if text:
        masked = mask_credentials(_sub(pattern, text))
        if masked != text:      # keep exc_info (for handlers that use it) when nothing hid
            record.exc_text = masked
            record.exc_info = None


class RedactingFilter(logging.Filter):
    """Masks registered secrets in a log record's message, arguments and traceback text."""

    def filter(self, record) -> bool:
        with _lock:
            pattern = _pattern
        _redact_record(record, pattern)
        return True


_FILTER = RedactingFilter()


def install_log_filter(logger, handlers_only=False) -> 'RedactingFilter':
    """Put the redacting filter on ``logger`` (unless ``handlers_only``) and its handlers.

    Idempotent.  Handler filters also catch records that child loggers propagate.
    """
    if not handlers_only and _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    for handler in logger.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _FILTER


_factory_installed = False


def install_record_factory() -> None:
    """Redact every log record of the process as it is created (idempotent): registered
    secrets and ``mask_credentials``, whatever logger or handler the record goes to."""
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            with _lock:
                pattern = _pattern
            _redact_record(record, pattern)
        except Exception:       # logging must never fail because of the redaction
            pass
        return record

    logging.setLogRecordFactory(factory)
