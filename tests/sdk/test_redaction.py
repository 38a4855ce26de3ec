"""Redaction of remembered secret values: the registry's limits and spellings, and the log filter."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from flyteconnect.redaction import MAX_VALUES, MIN_LENGTH, VALUES, RedactingFilter, SecretValues, redact, remember
from flyteconnect.server.logs import JsonFormatter


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    VALUES.clear()
    yield
    VALUES.clear()


def test_nothing_is_masked_until_a_value_is_remembered() -> None:
    assert VALUES.patterns == ()
    assert redact("token=abcd1234") == "token=abcd1234"
    remember("abcd1234")
    assert redact("token=abcd1234, again abcd1234") == "token=***, again ***"


def test_short_values_are_not_masked() -> None:
    remember("x" * (MIN_LENGTH - 1))
    assert VALUES.patterns == ()
    remember("yes!")
    assert redact("yes!") == "***"


def test_a_value_containing_another_is_masked_whole() -> None:
    remember("abcd")
    remember("abcd-efgh")
    assert redact("abcd-efgh and abcd") == "*** and ***"


def test_repr_and_json_spellings_are_masked() -> None:
    secret = "line1\nline2\"quoted'"
    remember(secret)
    assert redact(repr({"token": secret})) == "{'token': '***'}"
    assert redact('{"token": "line1\\nline2\\"quoted\'"}') == '{"token": "***"}'
    remember("pässwörd")
    assert redact('"p\\u00e4ssw\\u00f6rd" pässwörd') == '"***" ***'


def test_each_kind_keeps_its_most_recent_values() -> None:
    values = SecretValues(limit=3)
    values.remember("server-secret")
    for i in range(10):  # a caller flooding connection secrets cannot push the server's out
        values.remember(f"caller-{i:04d}", connection=True)
    assert values.redact("server-secret caller-0009 caller-0000") == "*** *** caller-0000"
    assert len(values.patterns) == 4
    values.remember("caller-0007", connection=True)  # seen again: most recent, kept
    values.remember("caller-0010", connection=True)
    assert values.redact("caller-0007 caller-0008") == "*** caller-0008"
    assert MAX_VALUES >= 100


def log_through(handler_filter: logging.Filter, formatter: logging.Formatter, emit: str) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(handler_filter)
    logger = logging.getLogger(f"test.redaction.{emit}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        if emit == "args":
            logger.warning("token %s and %d", "hunter2-token", 3)
        else:
            try:
                raise RuntimeError("token=hunter2-token")
            except RuntimeError:
                logger.exception("failed: %s", "hunter2-token")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("formatter", [logging.Formatter("%(message)s"), JsonFormatter()], ids=["text", "json"])
def test_log_filter_masks_messages_arguments_and_tracebacks(formatter: logging.Formatter) -> None:
    remember("hunter2-token")
    out = log_through(RedactingFilter(), formatter, "args")
    assert "token *** and 3" in out and "hunter2" not in out
    out = log_through(RedactingFilter(), formatter, "exception")
    assert "failed: ***" in out and "RuntimeError: token=***" in out and "hunter2" not in out


def test_log_filter_leaves_records_alone_while_nothing_is_remembered() -> None:
    out = log_through(RedactingFilter(), logging.Formatter("%(message)s"), "args")
    assert "token hunter2-token and 3" in out
