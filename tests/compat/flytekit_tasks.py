"""TaskTemplates serialized by flytekit itself (``get_serializable``), as pyflyte register sends them."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from flytekit import kwtypes
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.base_task import PythonTask
from flytekit.core.interface import Interface
from flytekit.tools.translator import get_serializable

SETTINGS = SerializationSettings(ImageConfig.auto_default_image(), project="p", domain="d", version="v1")


def serialize(task: Any) -> Any:
    """``task``'s TaskTemplate proto, as flytekit serializes it."""
    return get_serializable(OrderedDict(), SETTINGS, task).template.to_flyte_idl()


class EchoTask(PythonTask):  # type: ignore[misc]
    """The task side of tests/compat/flytekit_echo.py."""

    def __init__(self, name: str, task_type: str = "echo", version: int = 0) -> None:
        super().__init__(
            name=name,
            task_type=task_type,
            task_type_version=version,
            interface=Interface(
                inputs=kwtypes(text=str, mode=str), outputs=kwtypes(echo=str, namespace=str, length=int)
            ),
        )

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        return {"greeting": "hello"}
