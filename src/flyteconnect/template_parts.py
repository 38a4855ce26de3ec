"""The parts of a TaskTemplate that connectors read, shaped like flytekit's models (``flytekit.models.task``).

flytekit hands connectors ``container.env`` and ``container.config`` as dicts, ``args``/``command`` as lists and a
pod's ``pod_spec`` as a dict; connectors index, iterate ``.items()`` and even update them (Databricks adds
``FLYTE_FAIL_ON_ERROR`` to ``container.env``). These views give the same shapes over the proto, built once per
template view so such updates are seen by later reads, as with flytekit's models; ``to_flyte_idl()`` returns a proto
with them applied. Other attributes are the proto's (same names as flytekit's).
"""

from __future__ import annotations

from typing import Any

from flyteidl.core import tasks_pb2
from google.protobuf import json_format

__all__ = ["Container", "K8sObjectMetadata", "K8sPod"]


class Container:
    """flytekit's ``Container``: ``image``, ``command``, ``args``, ``resources``, ``env`` (dict), ``config`` (dict),
    ``data_config``, ``architecture``."""

    __slots__ = ("_pb", "args", "command", "config", "env")

    def __init__(self, pb: tasks_pb2.Container) -> None:
        self._pb = pb
        self.command: list[str] = list(pb.command)
        self.args: list[str] = list(pb.args)
        self.env: dict[str, str] = {kv.key: kv.value for kv in pb.env}
        self.config: dict[str, str] = {kv.key: kv.value for kv in pb.config}

    @property
    def image(self) -> str:
        """The container image."""
        return self._pb.image  # type: ignore[no-any-return]

    @property
    def resources(self) -> Any:
        """The ``flyteidl.core.Resources`` proto (``requests``/``limits`` lists of name/value entries)."""
        return self._pb.resources

    @property
    def data_config(self) -> Any:
        """The ``flyteidl.core.DataLoadingConfig`` proto, or None."""
        return self._pb.data_config if self._pb.HasField("data_config") else None

    @property
    def architecture(self) -> int:
        """The ``Container.Architecture`` enum value."""
        return self._pb.architecture  # type: ignore[no-any-return]

    def to_flyte_idl(self) -> tasks_pb2.Container:
        """The ``flyteidl.core.Container`` proto, with this view's command, args, env and config."""
        pb = tasks_pb2.Container()
        pb.CopyFrom(self._pb)
        del pb.command[:], pb.args[:], pb.env[:], pb.config[:]
        pb.command.extend(self.command)
        pb.args.extend(self.args)
        for key, value in self.env.items():
            pb.env.add(key=key, value=value)
        for key, value in self.config.items():
            pb.config.add(key=key, value=value)
        return pb

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Container):
            return bool(self.to_flyte_idl() == other.to_flyte_idl())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Container(image={self.image!r}, args={self.args!r})"


class K8sObjectMetadata:
    """flytekit's ``K8sObjectMetadata``: ``labels`` and ``annotations`` dicts."""

    __slots__ = ("annotations", "labels")

    def __init__(self, labels: dict[str, str], annotations: dict[str, str]) -> None:
        self.labels = labels
        self.annotations = annotations


class K8sPod:
    """flytekit's ``K8sPod``: ``metadata`` (labels, annotations), ``pod_spec`` (a dict), ``data_config``,
    ``primary_container_name``."""

    __slots__ = ("_pb", "metadata", "pod_spec")

    def __init__(self, pb: tasks_pb2.K8sPod) -> None:
        self._pb = pb
        meta = pb.metadata
        self.metadata = K8sObjectMetadata(dict(meta.labels), dict(meta.annotations))
        self.pod_spec: dict[str, Any] | None = (
            json_format.MessageToDict(pb.pod_spec) if pb.HasField("pod_spec") else None
        )

    @property
    def data_config(self) -> Any:
        """The ``flyteidl.core.DataLoadingConfig`` proto, or None."""
        return self._pb.data_config if self._pb.HasField("data_config") else None

    @property
    def primary_container_name(self) -> str:
        """The pod's primary container (flytekit reads it from the task's config)."""
        return self._pb.primary_container_name  # type: ignore[no-any-return]

    def to_flyte_idl(self) -> tasks_pb2.K8sPod:
        """The ``flyteidl.core.K8sPod`` proto."""
        return self._pb

    def __eq__(self, other: object) -> bool:
        if isinstance(other, K8sPod):
            return bool(self._pb == other._pb)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
