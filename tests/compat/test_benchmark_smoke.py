"""The flytekit-vs-flyteconnect benchmark's machinery works (tiny sizes; numbers are not looked at)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .compat_support import PYTHON, ROOT, compat_env


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is installed by scripts/test.sh")
def test_req_per_s_smoke(tmp_path: object) -> None:
    argv = [PYTHON, "-m", "benchmarks.flytekit_compat", "--smoke", "--scenario", "get_outputs"]
    out = subprocess.run(argv, cwd=ROOT, env=compat_env(), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "| GetTask, succeeded with outputs |" in out.stdout


def test_function_calls_compare_like_with_like() -> None:
    """Both servicers answer each counted request with the same reply, but for the deprecated Resource.state:
    flyteconnect fills it consistently with the phase, flytekit's server leaves it 0 (RETRYABLE_FAILURE)."""
    probe = (
        "import asyncio\n"
        "from flyteidl.admin import agent_pb2\n"
        "from benchmarks.flytekit_handlers import SCENARIOS, _methods, count\n"
        "for sc in SCENARIOS:\n"
        "    replies = {name: asyncio.run(m()) for name, m in _methods(sc).items()}\n"
        "    if sc.startswith('get'):\n"
        "        parse = agent_pb2.GetTaskResponse.FromString\n"
        "        ours, theirs = parse(replies['flyteconnect']), parse(replies['flytekit'])\n"
        "        assert (ours.resource.state, theirs.resource.state) == ({'get_outputs': 4, 'get_running': 3}[sc], 0)\n"
        "        ours.resource.ClearField('state')\n"
        "        assert ours == theirs, sc\n"
        "    else:\n"
        "        assert replies['flyteconnect'] == replies['flytekit'], sc\n"
        "print(count('get_running', 20))\n"
    )
    out = subprocess.run(
        [PYTHON, "-W", "ignore", "-c", probe], cwd=ROOT, env=compat_env(), capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "'flyteconnect':" in out.stdout and "'flytekit':" in out.stdout
