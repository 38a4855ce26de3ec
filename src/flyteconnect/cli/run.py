"""``flyteconnect run MODULE:TASK --input value ...``: run a connector task in-process or against a server.

Exit codes (``EXIT_CODES``, also in ``--help`` and docs/testing.md): 0 success, 1 the task ended FAILED (or
ABORTED, RETRYABLE_FAILED), 2 bad usage or inputs, 3 timed out, 4 connector or server error (the connector raised or
returned what the server refuses, no connector for the task, server unreachable), 130 interrupted by Ctrl-C,
143 terminated by SIGTERM; the job is deleted before exiting on 3, 130 and 143.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from flyteconnect.connector import TaskCategory
from flyteconnect.errors import FlyteConnectError
from flyteconnect.local.errors import TaskCancelled, TaskFailed, TaskTimeout
from flyteconnect.local.inputs import InputParseError, parse_inputs, to_jsonable
from flyteconnect.local.runner import ExecutableTask, LocalRunner, PollSchedule, RunResult

__all__ = ["EXIT_CODES", "load_task", "run"]

EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 3, 4, 130, 143
EXIT_CODES = {
    0: "succeeded",
    EXIT_FAILED: "the task ended FAILED, ABORTED or RETRYABLE_FAILED",
    EXIT_USAGE: "bad usage or inputs",
    EXIT_TIMEOUT: "timed out (the job was deleted)",
    EXIT_ERROR: "connector or server error (the connector raised or returned what the server refuses)",
    EXIT_INTERRUPTED: "interrupted by Ctrl-C (the job was deleted)",
    EXIT_TERMINATED: "terminated by SIGTERM (the job was deleted)",
}


def _import_module(ref: str) -> Any:
    if ref.endswith(".py") or os.sep in ref or "/" in ref:
        path = Path(ref).resolve()
        if not path.is_file():
            raise click.UsageError(f"no such file: {ref}")
        loaded = sys.modules.get(path.stem)
        if loaded is not None and getattr(loaded, "__file__", None) == str(path):
            return loaded  # imported already: importing twice would register its connectors twice
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise click.UsageError(f"cannot import {ref}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to the user are importable
    try:
        return importlib.import_module(ref)
    except ModuleNotFoundError as e:
        if e.name and ref.startswith(e.name):
            raise click.UsageError(f"cannot import module {ref!r}: {e}") from None
        raise


def load_task(target: str) -> ExecutableTask:
    """Import ``module:attr`` (or ``path/to/file.py:attr``) and check that it is a runnable task."""
    module_ref, sep, attr = target.rpartition(":")
    if not sep or not module_ref or not attr:
        raise click.UsageError(f"expected MODULE:TASK or FILE.py:TASK, got {target!r}")
    obj = _import_module(module_ref)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise click.UsageError(f"{module_ref} has no attribute {attr!r}") from None
    if not isinstance(obj, ExecutableTask):
        raise click.UsageError(
            f"{target} is a {type(obj).__name__}, not a task (a ConnectorTask or a class using the executor mixins)"
        )
    return obj


def _split_flags(args: Sequence[str], declared: Sequence[str]) -> dict[str, str]:
    """``--name value`` / ``--name=value`` pairs; ``--some-name`` also matches an input named ``some_name``."""
    by_flag = {name: name for name in declared} | {name.replace("_", "-"): name for name in declared}
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise click.UsageError(f"unexpected argument {arg!r}; task inputs are given as --name value")
        key, eq, value = arg[2:].partition("=")
        name = by_flag.get(key)
        if name is None:
            takes = ", ".join(f"--{n}" for n in declared) or "no inputs"
            raise click.UsageError(f"no such input --{key}; the task takes: {takes}")
        if not eq:
            if i + 1 >= len(args):
                raise click.UsageError(f"input --{key} needs a value")
            i += 1
            value = args[i]
        if name in out:
            raise click.UsageError(f"input --{key} given twice")
        out[name] = value
        i += 1
    return out


def _read_inputs_file(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except OSError as e:
        raise click.UsageError(f"cannot read inputs file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise click.UsageError(f"inputs file {path} is not valid JSON: {e.msg} (line {e.lineno})") from None
    if not isinstance(data, dict):
        raise click.UsageError(f"inputs file {path} must hold a JSON object of input name -> value")
    return data


def _storage_options(pairs: Sequence[str], s3_endpoint: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise click.UsageError(f"--storage-option expects KEY=VALUE, got {pair!r}")
        options[key] = value
    if s3_endpoint:
        options.setdefault("client_kwargs", {})["endpoint_url"] = s3_endpoint
    return options


def _ensure_connector(task: ExecutableTask) -> None:
    """For in-process runs: if no loaded module registered the task's connector, look among installed plugins."""
    from flyteconnect.registry import ConnectorRegistry, discover_connectors

    template = task.task_template()
    category = TaskCategory(template.type, template.task_type_version)
    registry = ConnectorRegistry.default()
    if category in registry:
        return
    for connector in discover_connectors().connectors:
        if connector.task_category == category:
            registry.register(connector)
            return


def _result_json(result: RunResult) -> dict[str, Any]:
    return {
        "task": result.task_name,
        "execution_id": result.execution_id,
        "phase": "SUCCEEDED",
        "outputs": to_jsonable(result.outputs),
        "output_prefix": result.output_prefix,
        "message": result.message,
        "log_links": [{"name": link.name, "uri": link.uri} for link in result.log_links],
        "elapsed": round(result.elapsed, 3),
    }


def _error_json(task_name: str, error: BaseException, phase: str) -> dict[str, Any]:
    out: dict[str, Any] = {"task": task_name, "phase": phase, "error": {"type": type(error).__name__}}
    out["error"]["message"] = getattr(error, "message", None) or str(error)
    links = getattr(error, "log_links", None) or []
    out["log_links"] = [{"name": getattr(x, "name", ""), "uri": getattr(x, "uri", "")} for x in links]
    return out


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}
)
@click.argument("target")
@click.argument("task_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--inputs-file", type=click.Path(dir_okay=False), help="JSON object of input name -> value.")
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON document (also on failure).")
@click.option("-m", "--module", "modules", multiple=True, help="Import a module (or file) that registers connectors.")
@click.option("--server", metavar="HOST:PORT", help="Send the task to a running connector server instead.")
@click.option("--protocol", default="v1", show_default=True, help="Server protocol: v1 (flyteidl) or v2 (flyteidl2).")
@click.option("--tls", is_flag=True, help="Connect to the server with TLS (system trust roots unless --tls-ca).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="CA certificate to trust (implies --tls).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Client certificate for mutual TLS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Client key for mutual TLS.")
@click.option("--tls-server-name", help="Name to verify in the server certificate.")
@click.option("--raw-prefix", envvar="FLYTECONNECT_RAW_PREFIX", help="Where output directories are made.")
@click.option("--storage-option", "storage_pairs", multiple=True, metavar="KEY=VALUE", help="fsspec option.")
@click.option("--s3-endpoint", metavar="URL", help="S3-compatible endpoint for reading outputs.pb.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds; overrides the task's timeout.")
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=0.5,
    show_default=True,
    help="Seconds before the first get; each later wait is 1.5 x longer.",
)
@click.option(
    "--max-poll-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Longest wait between two polls, seconds.",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "rich", "plain", "none"]),
    default="auto",
    show_default=True,
    help="Progress on stderr: a live table (rich), one line per change (plain) or none; auto = rich on a terminal.",
)
def run(
    target: str,
    task_args: tuple[str, ...],
    inputs_file: str | None,
    as_json: bool,
    modules: tuple[str, ...],
    server: str | None,
    protocol: str,
    tls: bool,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_server_name: str | None,
    raw_prefix: str | None,
    storage_pairs: tuple[str, ...],
    s3_endpoint: str | None,
    timeout: float | None,
    poll_interval: float,
    max_poll_interval: float,
    progress: str,
) -> None:
    """Run TARGET (MODULE:TASK or FILE.py:TASK) with inputs given as --name value; print its outputs as JSON.

    \b
    Exit codes:
      0    succeeded
      1    the task ended FAILED, ABORTED or RETRYABLE_FAILED
      2    bad usage or inputs
      3    timed out (the job was deleted)
      4    connector or server error (the connector raised or returned
           what the server refuses, no connector, server unreachable)
      130  interrupted by Ctrl-C (the job was deleted)
      143  terminated by SIGTERM (the job was deleted)
    """
    for module in modules:
        _import_module(module)
    task = load_task(target)
    declared = dict(task.input_types)
    try:
        inputs = parse_inputs(declared, _split_flags(task_args, list(declared)), _read_inputs_file(inputs_file))
    except InputParseError as e:
        raise click.UsageError(str(e)) from None
    missing = [name for name in declared if name not in inputs]
    if missing:
        raise click.UsageError(f"missing input(s): {', '.join('--' + n for n in missing)}")
    try:
        LocalRunner.convert_inputs(task, inputs)  # fail as a usage error before anything starts
    except (TypeError, ValueError) as e:
        raise click.UsageError(str(e)) from None

    backend = None
    if server:
        from flyteconnect.local.remote import TlsOptions, connect

        use_tls = tls or bool(tls_ca or tls_cert or tls_key)
        tls_options = TlsOptions(tls_ca, tls_cert, tls_key, tls_server_name) if use_tls else None
        try:
            backend = connect(server, protocol=protocol, tls=tls_options)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
    else:
        _ensure_connector(task)
    runner = LocalRunner(
        backend=backend,
        raw_prefix=raw_prefix,
        storage_options=_storage_options(storage_pairs, s3_endpoint),
        poll=PollSchedule(poll_interval, 1.5, max(max_poll_interval, poll_interval)),
        timeout=timeout,
        progress=progress,
    )
    try:
        result = runner.run_result(task, **inputs)
    except KeyboardInterrupt:
        _fail(as_json, task.name, "interrupted (Ctrl-C)", None, "ABORTED", EXIT_INTERRUPTED)
    except TaskCancelled as e:
        _fail(as_json, task.name, str(e), e, "ABORTED", EXIT_TERMINATED)
    except TaskFailed as e:
        _fail(as_json, task.name, str(e), e, _phase_name(e.phase), EXIT_FAILED)
    except TaskTimeout as e:
        _fail(as_json, task.name, str(e), e, "TIMED_OUT", EXIT_TIMEOUT)
    except FlyteConnectError as e:
        _fail(as_json, task.name, f"{type(e).__name__}: {e}", e, "ERROR", EXIT_ERROR)
    except Exception as e:  # the connector's own bug: its traceback (ending in its code), then the documented code
        import traceback

        traceback.print_exception(e)
        _fail(as_json, task.name, f"{type(e).__name__}: {e}", e, "ERROR", EXIT_ERROR)
    if as_json:
        click.echo(json.dumps(_result_json(result)))
    else:
        click.echo(json.dumps(to_jsonable(result.outputs), indent=2))


def _phase_name(phase: int) -> str:
    from flyteconnect.connector import Phase

    return Phase(phase).name if phase in Phase._value2member_map_ else str(phase)


def _fail(as_json: bool, task_name: str, text: str, error: BaseException | None, phase: str, code: int) -> NoReturn:
    if as_json:
        click.echo(json.dumps(_error_json(task_name, error or KeyboardInterrupt(), phase)))
    click.echo(f"Error: {text}", err=True)
    raise click.exceptions.Exit(code)
