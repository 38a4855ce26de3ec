"""An example flyteconnect connector package: ``TimerConnector`` and the task that uses it."""

from flyteconnect_example.connector import TimerConnector, TimerMeta
from flyteconnect_example.tasks import countdown

__all__ = ["TimerConnector", "TimerMeta", "countdown"]
