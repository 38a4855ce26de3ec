"""The error boundary tells callers nothing of the server's own: secret values and file-system locations."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from flyteconnect.redaction import VALUES, remember
from flyteconnect.server.errors import MAX_DETAILS, for_callers, to_status


@pytest.fixture(autouse=True)
def _no_values() -> Iterator[None]:
    VALUES.clear()
    yield
    VALUES.clear()


def test_the_working_directory_becomes_a_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "app"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    text = f"cannot open '{cwd}/data/in.csv' nor {cwd}, but {cwd}lication/x and /other{cwd} are not ours"
    assert for_callers(text) == (
        f"cannot open '<cwd>/data/in.csv' nor <cwd>, but {cwd}lication/x and /other{cwd} are not ours"
    )


def test_a_root_working_directory_is_not_a_prefix_of_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    assert for_callers("no such file: /data/x.csv") == "no such file: /data/x.csv"


def test_home_python_and_the_servers_code_become_labels() -> None:
    home = os.path.expanduser("~")
    site = sysconfig.get_paths()["purelib"]
    here = Path(__file__).resolve()
    text = f"{home}/.netrc | {site}/httpx/_client.py | {here}"
    cleaned = for_callers(text)
    assert home not in cleaned and site not in cleaned and str(here.parent) not in cleaned
    assert "/httpx/_client.py" in cleaned and cleaned.endswith(here.name)


def test_details_mask_secret_values_before_collapsing_whitespace() -> None:
    remember("multi\nline-secret")
    code, details = to_status(RuntimeError("token=multi\nline-secret"), operation="get", connector="C")
    assert code == grpc.StatusCode.INTERNAL
    assert details == "get (C): RuntimeError: token=***"


def test_debug_frames_keep_no_server_path_and_no_secret() -> None:
    remember("frame-secret-value")
    try:
        raise ValueError(f"boom in {Path.cwd()} with frame-secret-value")
    except ValueError as e:
        error = e
    _, details = to_status(error, debug=True)
    assert "test_status_for_callers.py" in details and "raise ValueError" in details  # the frames are there
    assert str(Path(__file__).parent) not in details and str(Path.cwd()) not in details
    assert "frame-secret-value" not in details and len(details) <= MAX_DETAILS
