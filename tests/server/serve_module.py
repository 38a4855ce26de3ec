"""A connector module for ``flyteconnect serve -m``: registers connectors the flytekit way, at import."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from connectors import AdderConnector, EchoConnector, SlowConnector
from flyteconnect import ConnectorRegistry

for connector in (SlowConnector(), EchoConnector(), AdderConnector()):
    ConnectorRegistry.register(connector)
