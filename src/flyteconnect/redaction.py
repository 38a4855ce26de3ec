"""The secret values this process has resolved, and the one function that masks them: ``redact(text)``.

``flyteconnect.secrets`` remembers every value it resolves from the environment or a mounted file (the server's
secrets) and every value of a request's ``connection.secrets`` (the caller's). The server applies ``redact`` where
text leaves it: error details sent to callers (``flyteconnect.server.errors``), ``Resource.message`` in replies, and
log lines (``RedactingFilter``, installed by the server's logging set-up). Each occurrence of a value becomes ``***``;
so does its ``repr`` and JSON spelling (a message quoting ``{"token": ...}`` or ``'a\\nb'``).

Limits, on purpose: values shorter than ``MIN_LENGTH`` characters are not masked (masking ``"1"`` or ``"yes"``
would garble every message and hide nothing worth hiding); each kind keeps the ``MAX_VALUES`` most recently used
values, the server's separately from the callers' so a caller sending many secrets cannot push the server's out.
Nothing is masked, and nothing costs, until the first secret is resolved.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Iterable

__all__ = [
    "MAX_VALUES",
    "MIN_LENGTH",
    "REDACTED",
    "VALUES",
    "RedactingFilter",
    "SecretValues",
    "redact",
    "remember",
    "remember_connection",
]

REDACTED = "***"
MIN_LENGTH = 4
MAX_VALUES = 256


def _spellings(value: str) -> set[str]:
    """``value`` and the forms it takes inside ``repr`` and JSON text."""
    forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {f for f in forms if len(f) >= MIN_LENGTH}


class SecretValues:
    """Two bounded, most-recently-used sets of secret values (the server's and the callers') and ``redact``.

    ``patterns`` is the current tuple of strings to mask, longest first (so a value containing another is masked
    whole); empty until a value is remembered, which is what the hot path checks.
    """

    def __init__(self, limit: int = MAX_VALUES) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        # value -> its spellings, oldest first
        self._server: collections.OrderedDict[str, set[str]] = collections.OrderedDict()
        self._connection: collections.OrderedDict[str, set[str]] = collections.OrderedDict()
        self.patterns: tuple[str, ...] = ()

    def remember(self, value: str, *, connection: bool = False) -> None:
        """Mask ``value`` from now on (one of the callers' connection secrets when ``connection``)."""
        if len(value) < MIN_LENGTH:
            return
        kept = self._connection if connection else self._server
        with self._lock:
            if value in kept:
                kept.move_to_end(value)
                return
            kept[value] = _spellings(value)
            if len(kept) > self._limit:
                kept.popitem(last=False)
            forms = set().union(*self._server.values(), *self._connection.values())
            self.patterns = tuple(sorted(forms, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` with every remembered value replaced by ``***``."""
        for value in self.patterns:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def clear(self) -> None:
        """Forget every value (tests)."""
        with self._lock:
            self._server.clear()
            self._connection.clear()
            self.patterns = ()


VALUES = SecretValues()
"""The process's remembered values."""


def remember(value: str) -> None:
    """Mask ``value`` (a secret the server resolved) from now on."""
    VALUES.remember(value)


def remember_connection(values: Iterable[str]) -> None:
    """Mask the values of a request's connection secrets from now on."""
    for value in values:
        VALUES.remember(value, connection=True)


def redact(text: str) -> str:
    """``text`` with every remembered secret value replaced by ``***`` (unchanged, at no cost, when there is none)."""
    return VALUES.redact(text) if VALUES.patterns else text


class RedactingFilter(logging.Filter):
    """A handler filter that masks remembered secret values in a record's message, traceback and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (always kept)."""
        if not VALUES.patterns:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself when the handler formats the record
            return True
        clean = VALUES.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = VALUES.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = VALUES.redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
