"""SensorReach, the file sensor's policy, on its own: protocols, roots, normalisation, storage options, settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from flyteconnect.cli.main import cli
from flyteconnect.connectors.sensor_reach import (
    DEFAULT_PROTOCOLS,
    ReachDenied,
    SensorReach,
    current_reach,
    set_default_reach,
)


def refused(reach: SensorReach, path: str) -> str:
    with pytest.raises(ReachDenied) as e:
        reach.check(path)
    return str(e.value)


def test_default_reach_is_the_object_stores_and_no_local_file() -> None:
    reach = SensorReach()
    for path in ("s3://b/k", "s3a://b/k", "gs://b/k", "gcs://b/k", "abfs://c/k", "abfss://c/k", "az://c/k"):
        assert reach.check(path) == (path.split("://")[0], path)
    assert "the operator named no sensor roots" in refused(reach, "/tmp/x")
    for path in ("http://x/", "https://x/", "zip://a", "memory://a", "ssh://h/x", "S3://b/k", "data://x", "hf://x"):
        assert f"does not allow {path.split('://')[0]}:// paths" in refused(reach, path)
    assert "chained URLs" in refused(reach, "simplecache::s3://b/k")
    assert "chained URLs" in refused(reach, "s3://b/k::http://x/")
    assert "'..' in remote paths" in refused(reach, "s3://b/a/../k")
    assert "NUL" in refused(reach, "s3://b/k\x00")


def test_local_roots_normalise_before_the_check(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "root-sibling").mkdir()
    (root / "out").symlink_to(tmp_path / "root-sibling")
    (root / "in").symlink_to(root / "sub")
    reach = SensorReach(roots=(str(root),))
    assert reach.local_allowed
    assert reach.check(f"{root}/sub/f") == ("file", f"{root}/sub/f")
    assert reach.check(f"{root}/sub/../f") == ("file", f"{root}/f")
    assert reach.check(f"file://{root}/f") == ("file", f"{root}/f")
    assert reach.check(f"{root}/in/f") == ("file", f"{root}/sub/f")  # looked at where it resolves
    assert reach.check(str(root)) == ("file", str(root))
    outside = "refuses local paths outside the server's sensor roots"
    for path in (f"{root}-sibling/f", f"{root}/../root-sibling/f", f"{root}/out/f", "/etc/passwd", f"/{root}/../.."):
        assert outside in refused(reach, path), path
    assert "relative" in refused(reach, "root/f")
    assert "relative" in refused(reach, "~/f")
    assert outside in refused(reach, f"//{str(root)[1:]}-sibling/f")


def test_a_root_given_through_a_symlink_accepts_both_spellings(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    reach = SensorReach(roots=(str(tmp_path / "alias"),))
    assert reach.check(f"{tmp_path}/alias/f") == ("file", f"{tmp_path}/real/f")
    assert reach.check(f"{tmp_path}/real/f") == ("file", f"{tmp_path}/real/f")


def test_url_roots_narrow_their_protocol_and_its_aliases() -> None:
    reach = SensorReach.from_options(["none"], ["s3://exports/incoming", "gs://public"])
    assert reach.protocols == frozenset()
    assert reach.check("s3://exports/incoming/x") == ("s3", "s3://exports/incoming/x")
    assert reach.check("s3a://exports/incoming") == ("s3a", "s3a://exports/incoming")
    assert reach.check("gcs://public/any/thing")[0] == "gcs"
    narrowed = "allows s3:// paths only under the prefixes the operator named"
    assert narrowed in refused(reach, "s3://exports/incoming-other/x")
    assert narrowed in refused(reach, "s3://exports/x")
    assert "s3a:// paths only under" in refused(reach, "s3a://other/x")
    assert "does not allow abfs://" in refused(reach, "abfs://c/k")
    assert "does not allow https://" in refused(reach, "https://exports/incoming/x")


def test_allowed_protocols_replace_the_default() -> None:
    reach = SensorReach.from_options(["https", " s3 "], None)
    assert reach.protocols == {"https", "s3"}
    assert reach.check("https://example.com/x") == ("https", "https://example.com/x")
    assert reach.check("s3a://b/k")[0] == "s3a"  # an alias of an allowed protocol
    assert "does not allow gs://" in refused(reach, "gs://b/k")
    assert SensorReach.from_options(None, None).protocols == DEFAULT_PROTOCOLS


@pytest.mark.parametrize(
    ("protocols", "roots", "message"),
    [
        (["file"], [], "name directories as sensor roots"),
        (["local"], [], "name directories as sensor roots"),
        (["s3://b"], [], "not a protocol name"),
        ([], ["data"], "must be an absolute directory"),
        ([], ["s3://"], "must name a bucket"),
        ([], ["s3://b/../c"], "without '..'"),
        ([], ["simplecache::s3://b"], "chained URLs cannot be roots"),
    ],
)
def test_bad_settings_are_refused(protocols: list[str], roots: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SensorReach.from_options(protocols, roots)


def test_storage_options_from_a_task_may_only_set_anon() -> None:
    reach = SensorReach()
    assert reach.check_storage_options(None) == {}
    assert reach.check_storage_options({"anon": True}) == {"anon": True}
    for options in (
        {"endpoint_url": "http://127.0.0.1:1"},
        {"client_kwargs": {"endpoint_url": "http://127.0.0.1:1"}},
        {"key": "k", "secret": "s"},
        {"profile": "admin", "anon": True},
        {"token": "x"},
    ):
        with pytest.raises(ReachDenied, match=r"refuses storage_options .*endpoints and credentials come from"):
            reach.check_storage_options(options)
    with pytest.raises(ReachDenied, match="anon must be true or false"):
        reach.check_storage_options({"anon": "yes"})
    with pytest.raises(ReachDenied, match="must be an object"):
        reach.check_storage_options(["anon"])


def test_environment_and_process_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"FLYTECONNECT_SENSOR_ROOTS": f"{tmp_path}, s3://b/p", "FLYTECONNECT_SENSOR_ALLOW_PROTOCOLS": "gs,https"}
    reach = SensorReach.from_env(env)
    assert reach.protocols == {"gs", "https"} and reach.roots == (str(tmp_path), "s3://b/p")
    assert SensorReach.from_env({}) == SensorReach()
    assert SensorReach.from_env({"FLYTECONNECT_SENSOR_ALLOW_PROTOCOLS": "none"}).protocols == frozenset()

    previous = set_default_reach(None)
    try:
        monkeypatch.setenv("FLYTECONNECT_SENSOR_ROOTS", str(tmp_path))
        assert current_reach().roots == (str(tmp_path),)  # read from the environment at first use
        chosen = SensorReach(protocols=frozenset({"s3"}))
        set_default_reach(chosen)
        assert current_reach() is chosen
    finally:
        set_default_reach(previous)


def test_serve_refuses_bad_sensor_settings_before_starting() -> None:
    result = CliRunner().invoke(cli, ["serve", "--no-entry-points", "--port", "0", "--sensor-root", "relative/dir"])
    assert result.exit_code == 2
    assert "sensor root 'relative/dir' must be an absolute directory" in result.output
    result = CliRunner().invoke(cli, ["serve", "--no-entry-points", "--sensor-allow-protocol", "file"])
    assert result.exit_code == 2 and "name directories as sensor roots" in result.output


def test_serve_options_reach_the_served_sensor(tmp_path: Path) -> None:
    """``flyteconnect serve --sensor-root`` as a real process: a file under the root is sensed, others refused."""
    (tmp_path / "ready").write_text("x")
    script = (
        "import json, sys, grpc\n"
        "from flyteidl.admin import agent_pb2\n"
        "from flyteidl.service import agent_pb2_grpc\n"
        "stub = agent_pb2_grpc.AsyncAgentServiceStub(grpc.insecure_channel(sys.argv[1]))\n"
        "for path in sys.argv[2:]:\n"
        "    meta = json.dumps({'sensor_module': 'm', 'sensor_name': 'FileSensor', 'inputs': {'path': path}})\n"
        "    category = agent_pb2.TaskCategory(name='sensor', version=0)\n"
        "    request = agent_pb2.GetTaskRequest(task_category=category, resource_meta=meta.encode())\n"
        "    r = stub.GetTask(request, timeout=10)\n"
        "    print(r.resource.phase, r.resource.message)\n"
    )
    for how in (["--sensor-root", str(tmp_path)], []):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if not how:
            env["FLYTECONNECT_SENSOR_ROOTS"] = str(tmp_path)
        serve = [sys.executable, "-m", "flyteconnect", "serve", "--connector", "sensor", "--host", "127.0.0.1"]
        proc = subprocess.Popen(
            [*serve, "--port", "0", "--metrics-port", "0", *how],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("listening on 127.0.0.1:"), line
            address = line.split()[-1]
            asked = subprocess.run(
                [sys.executable, "-c", script, address, str(tmp_path / "ready"), "/etc/passwd"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert asked.returncode == 0, asked.stderr
            assert asked.stdout.splitlines() == [
                f"3 {tmp_path / 'ready'} exists",  # SUCCEEDED
                "5 cannot watch /etc/passwd: the server's file sensor policy refuses local paths outside the server's "
                "sensor roots",  # FAILED
            ]
        finally:
            proc.terminate()
            proc.wait(30)
            proc.stdout.close()  # type: ignore[union-attr]
