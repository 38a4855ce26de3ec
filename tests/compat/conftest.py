"""The compat suite runs in the compat virtualenv (``bash scripts/compat_venv.sh``: flytekit 1.16.31 and its
connector plugins beside flyteconnect); ``scripts/test.sh`` runs it as its second pytest invocation.

Servers run as subprocesses of that virtualenv's Python with this checkout's ``src`` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # flytekit, airflow and the plugins' clients warn about their own dependencies at import; the suite's
    # filterwarnings = error is for flyteconnect's code, not theirs (later lines take precedence).
    for line in (
        "ignore::DeprecationWarning",
        "ignore::PendingDeprecationWarning",
        "ignore::FutureWarning",
        "ignore::UserWarning",
        "ignore::ResourceWarning",
    ):
        config.addinivalue_line("filterwarnings", line)
