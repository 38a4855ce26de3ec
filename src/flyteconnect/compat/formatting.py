"""``format_dict`` (flytekit.utils.dict_formatter): fill ``{a.b}`` placeholders in a nested config from values.

A string that is exactly one placeholder becomes the value itself (a dict stays a dict); placeholders inside longer
strings are replaced by the value's text. ``{idempotence_token}`` (or ``{inputs.idempotence_token}``) takes the
given token; for SageMaker the result is cut to the 63 characters its names allow, by shortening the token.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["format_dict"]

_PLACEHOLDER = re.compile(r"\{([^}]+)\}")
_SAGEMAKER_NAME_LIMIT = 63


def _lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for key in dotted.split("."):
        if key not in node:
            raise ValueError(f"Could not find the key {key} in {node}.")
        node = node[key]
    return node


def _replace(service: str, text: str, name: str, value: str) -> str:
    placeholder = "{" + name + "}"
    out = text.replace(placeholder, value)
    is_token = name in ("idempotence_token", "inputs.idempotence_token")
    if service == "sagemaker" and is_token and len(out) > _SAGEMAKER_NAME_LIMIT:
        room = _SAGEMAKER_NAME_LIMIT - len(text.replace(placeholder, ""))
        out = text.replace(placeholder, value[:room])
    return out


def format_dict(
    service: str, original_dict: Any, update_dict: dict[str, Any], idempotence_token: str | None = None
) -> Any:
    """``original_dict`` with its placeholders filled from ``update_dict`` (dicts are updated in place)."""
    if original_dict is None:
        return None
    if isinstance(original_dict, str):
        text = original_dict
        if "{" not in text or "}" not in text:
            return text
        for name in _PLACEHOLDER.findall(text):
            if "." in name:
                value = _lookup(update_dict, name)
                if text == "{" + name + "}":
                    return value
                text = _replace(service, text, name, str(value))
            elif name == "idempotence_token" and idempotence_token:
                text = _replace(service, text, name, idempotence_token)
        return text
    if isinstance(original_dict, list):
        return [format_dict(service, item, update_dict, idempotence_token) for item in original_dict]
    if isinstance(original_dict, dict):
        for key, value in original_dict.items():
            original_dict[key] = format_dict(service, value, update_dict, idempotence_token)
    return original_dict
