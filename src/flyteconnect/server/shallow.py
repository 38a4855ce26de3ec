"""Shallow parses of the hot requests: their nested messages kept as serialized bytes, parsed on first use.

A CreateTaskRequest is a TaskTemplate, a LiteralMap and a TaskExecutionMetadata; upb parsing it builds every nested
message (about 41k instructions for a realistic one, most of a bare server's whole call), although a connector
usually reads a few fields of the template and the inputs. ``shallow(cls)`` is a twin of a request message with the
same field names and numbers in which every message-typed field is ``bytes``: the wire format of a nested message
and of a bytes field is the same (a length-delimited field), so the twin parses the same bytes, checks the framing,
and hands the nested messages over as their bytes (8k instructions for the same request). The views in
``flyteconnect.models`` parse those bytes when first read, and a bad one is an ``InvalidRequest`` then.

One difference from a full parse: a nested message sent twice in one request is merged by protobuf and the last one
kept here. Encoders (Propeller's included) write each field once.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

__all__ = ["shallow"]

_POOL = descriptor_pool.DescriptorPool()
_CACHE: dict[str, Any] = {}


def shallow(cls: Any) -> Any:
    """The twin of message class ``cls`` whose message-typed fields are ``bytes`` (built once per class)."""
    desc: Descriptor = cls.DESCRIPTOR
    twin = _CACHE.get(desc.full_name)
    if twin is None:
        twin = _CACHE[desc.full_name] = _build(desc)
    return twin


def _build(desc: Descriptor) -> Any:
    package = f"flyteconnect.shallow.{desc.file.package}"  # the same short name, so errors name the message
    file = descriptor_pb2.FileDescriptorProto(
        name=f"flyteconnect/shallow/{desc.full_name}.proto", package=package, syntax="proto3"
    )
    message = file.message_type.add(name=desc.name)
    oneofs = {}
    for oneof in desc.oneofs:  # kept: WhichOneof and presence work on the twin as on the message
        oneofs[oneof.name] = len(message.oneof_decl)
        message.oneof_decl.add(name=oneof.name)
    for field in desc.fields:
        if _repeated(field):
            raise ValueError(f"{desc.full_name}.{field.name}: repeated fields have no shallow twin")
        kind = FieldDescriptor.TYPE_BYTES if field.type == FieldDescriptor.TYPE_MESSAGE else field.type
        if kind == FieldDescriptor.TYPE_ENUM:  # an open proto3 enum is an int32 on the wire
            kind = FieldDescriptor.TYPE_INT32
        twin = message.field.add(name=field.name, number=field.number, type=kind, label=FieldDescriptor.LABEL_OPTIONAL)
        if field.containing_oneof is not None:
            twin.oneof_index = oneofs[field.containing_oneof.name]
    _POOL.Add(file)
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{package}.{desc.name}"))


def _repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 6: .label is deprecated
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED
