"""A connector module for ``flyteconnect serve -m`` that mishandles secrets and paths the ways real ones do.

``leaky`` v0: ``get`` does what ``resource_meta``'s ``how`` says (GetTask can be sent without a CreateTask):

- ``raise_file`` / ``raise_env``: raise ``RuntimeError(f"token={token}")`` with the secret ``api_token`` (a mounted
  file) or ``env_token`` (``$_FSEC_ENV_TOKEN``);
- ``message``: answer RUNNING with the file secret in ``Resource.message``;
- ``log``: log the file secret, then answer SUCCEEDED;
- ``connection``: raise with the value of the request's Flyte 2 connection secret ``conn_key`` (a keyword argument);
- ``cwd``: raise ``FileNotFoundError`` for a file in the server's working directory;
- ``own_file``: open a missing file next to this module (one of the server's own files).
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyteconnect import AsyncConnectorBase, ConnectorRegistry, Phase, Resource, ResourceMeta
from flyteconnect.secrets import get_secret

log = logging.getLogger("leaky")


@dataclass
class LeakMeta(ResourceMeta):
    how: str


class LeakyConnector(AsyncConnectorBase[LeakMeta]):
    name = "Leaky Connector"
    task_type_name = "leaky"
    metadata_type = LeakMeta

    async def create(self, task_template: Any, output_prefix: str, inputs: Any = None, **kwargs: Any) -> LeakMeta:
        return LeakMeta(how=str(task_template.custom.get("how", "raise_file")))

    async def get(self, resource_meta: LeakMeta, **kwargs: Any) -> Resource:
        how = resource_meta.how
        if how == "raise_file":
            token = get_secret("api_token")
            raise RuntimeError(f"token={token}")
        if how == "raise_env":
            token = get_secret("env_token")
            raise RuntimeError(f"token={token}")
        if how == "message":
            return Resource(phase=Phase.RUNNING, message=f"polling with {get_secret('api_token')}")
        if how == "log":
            log.warning("calling the API with token %s", get_secret("api_token"))
            return Resource(phase=Phase.SUCCEEDED)
        if how == "connection":
            raise RuntimeError(f"key={kwargs['conn_key']}")
        if how == "cwd":
            missing = os.path.join(os.getcwd(), "inputs", "missing.csv")
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), missing)
        if how == "own_file":
            Path(__file__).with_name("no-such-settings.toml").read_text()
        return Resource(phase=Phase.FAILED, message=f"unknown how {how!r}")

    async def delete(self, resource_meta: LeakMeta, **kwargs: Any) -> None:
        pass


ConnectorRegistry.register(LeakyConnector())
