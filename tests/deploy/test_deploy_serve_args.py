"""Every `flyteconnect serve` command line we ship (Deployment, Dockerfile CMD, docs) parses with the real command."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml
from deploy_helpers import DOCS, ROOT, Manifest, code_blocks, parse_dockerfile

from flyteconnect.cli.serve import serve


def parse(args: list[str]) -> dict[str, object]:
    """``serve``'s parameters for ``args``, as click parses them (nothing runs; bad flags raise UsageError)."""
    with serve.make_context("serve", list(args)) as ctx:
        return dict(ctx.params)


def test_an_unknown_flag_is_rejected() -> None:
    with pytest.raises(click.UsageError):
        parse(["--prometheus_port", "9090"])  # flytekit's spelling, not ours


def test_deployment_args_match_the_ports_probes_and_drain(deployment: Manifest, container: Manifest) -> None:
    params = parse(container["args"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert params["port"] == ports["grpc"] == container["readinessProbe"]["grpc"]["port"]
    assert params["metrics_port"] == ports["metrics"]
    assert params["log_format"] == "json"  # one JSON object per line for the cluster's log pipeline
    # Kubernetes kills the pod terminationGracePeriodSeconds after deletion starts; that period covers the preStop
    # sleep, then the server's own drain (--grace), plus slack for the process to exit.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = float(params["grace"])  # type: ignore[arg-type]
    period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert period == int(pre_stop[1]) + grace + 5


def test_drain_outlasts_every_propeller_deadline_in_the_docs(container: Manifest) -> None:
    # A call in flight at SIGTERM may run until Propeller's deadline; --grace must let it finish.
    grace = float(parse(container["args"])["grace"])  # type: ignore[arg-type]
    configs = [
        b["plugins"]["connector-service"]
        for b in map(yaml.safe_load, code_blocks(DOCS.read_text(), "yaml"))
        if isinstance(b, dict) and "plugins" in b
    ]
    deadlines = [
        seconds(value)
        for config in configs
        for deployment in [config["defaultConnector"], *config.get("connectors", {}).values()]
        for value in [deployment.get("defaultTimeout", "10s"), *deployment.get("timeouts", {}).values()]
    ]
    assert deadlines and max(deadlines) <= grace


def seconds(duration: str) -> float:
    """A Go duration such as ``10s``, ``1m30s`` or ``500ms`` in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_dockerfile_cmd_serves_the_exposed_ports() -> None:
    dockerfile = parse_dockerfile((ROOT / "Dockerfile").read_text())
    runtime = dockerfile.stages[-1]
    (cmd,) = runtime.all("CMD")
    params = parse(cmd.exec_form())
    exposed = {int(p) for i in runtime.all("EXPOSE") for p in i.value.split()}
    assert {params["port"], params["metrics_port"]} == exposed


def docs_serve_commands() -> list[list[str]]:
    """The `flyteconnect serve ...` arguments of every shell line in docs/deploying.md."""
    found = []
    for block in code_blocks(DOCS.read_text(), "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["flyteconnect", "serve"]:
                found.append(words[2:])
    return found


def test_flyte2_connector_environment_args_parse() -> None:
    # the ConnectorEnvironment snippet: command ["flyteconnect", "serve"] plus args=[...]
    (block,) = [b for b in code_blocks(DOCS.read_text(), "python") if "ConnectorEnvironment" in b]
    call = next(n for n in ast.walk(ast.parse(block)) if isinstance(n, ast.Call) and n.keywords)
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert keywords["command"] == ["flyteconnect", "serve"]
    params = parse(keywords["args"])
    assert params["protocols"] == "v2"
    assert params["port"] == 8080  # the environment's default h2c port


def test_serve_commands_in_the_docs_parse(tmp_path: Path) -> None:
    commands = docs_serve_commands()
    assert len(commands) >= 3
    # TLS files must exist for click to accept them: stand-ins for the documented mount
    stand_in = tmp_path / "pem"
    stand_in.write_text("not a real certificate\n")
    for args in commands:
        for i, word in enumerate(args[:-1]):
            if word.startswith("--tls-"):
                assert args[i + 1].startswith("/etc/tls/"), args
                args[i + 1] = str(stand_in)
        parse(args)
