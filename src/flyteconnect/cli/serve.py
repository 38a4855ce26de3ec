"""``flyteconnect serve``: load connectors, print what is served, run the gRPC server until SIGTERM/SIGINT.

A thin shell over ``flyteconnect.server``: discovery (``loading``), the server (``app``) and the multi-process
supervisor (``workers``). Prints ``listening on HOST:PORT`` once serving (parseable; ``--port 0`` picks a port).

It refuses to start (exit 1, one line per problem saying what to fix) when a module named with ``-m`` fails to
import, a ``--connector`` entry matches nothing, or there is no connector at all; ``--keep-going`` serves the rest
with health's ``flyteconnect.Connectors`` answering NOT_SERVING. A stop signal during start-up exits 0.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import click

from flyteconnect.cli.serve_limits import limit_options, limits_from, parse_size
from flyteconnect.cli.serve_output import (
    announce_line,
    bind_error,
    connector_table,
    listen_address,
    log_table,
    plain_table,
    report_failures,
    say_problem,
)

__all__ = [
    "StartupInterrupted",
    "common_discovery_options",
    "connector_table",
    "discover",
    "readiness_problems",
    "serve",
]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StartupInterrupted(KeyboardInterrupt):
    """A stop signal arrived before the server was serving (a KeyboardInterrupt, so discovery lets it through)."""


def _interrupt_startup(signum: int, frame: Any) -> None:
    raise StartupInterrupted(signum)


def common_discovery_options(f: Any) -> Any:
    """The discovery flags shared by ``serve`` and ``list``."""
    f = click.option(
        "--connector",
        "connectors",
        multiple=True,
        metavar="NAME",
        help="Serve only these connectors (name, task type or name_vN); repeatable.",
    )(f)
    f = click.option(
        "--entry-points/--no-entry-points",
        default=True,
        show_default=True,
        help="Discover connectors from the 'flyteconnect.connectors' entry points.",
    )(f)
    f = click.option(
        "--flytekit-plugins",
        is_flag=True,
        help="Also serve every connector `pyflyte serve connector` would serve here (needs flyteconnect[flytekit]).",
    )(f)
    f = click.option(
        "--module",
        "-m",
        "modules",
        multiple=True,
        metavar="MODULE",
        help="Import a module (dotted path or .py file) whose connectors register themselves; repeatable.",
    )(f)
    return f


def discover(
    modules: Sequence[str], entry_points: bool, connectors: Sequence[str], flytekit_plugins: bool = False
) -> Any:
    """Run discovery (``flyteconnect.server.loading.load_connectors``)."""
    from flyteconnect.server.loading import load_connectors

    return load_connectors(
        modules, entry_points=entry_points, allow=set(connectors) or None, flytekit_plugins=flytekit_plugins
    )


def readiness_problems(result: Any, strict: bool) -> list[str]:
    """Why serving ``result`` would not serve what the operator asked for: one line each, saying what to fix."""
    problems = [
        f"{source} failed to load ({reason}): fix the module or the -m value"
        for source, reason in result.module_failures().items()
    ]
    if strict:
        problems += [
            f"{source} failed to load ({reason}): fix or uninstall it, or serve without --strict"
            for source, reason in result.plugin_failures().items()
        ]
    found = sorted([str(c) for c in result.registry.categories()] + list(result.skipped))
    problems += [
        f"--connector {entry} matches no connector: give a name, task type or name_vN of one found "
        f"({', '.join(found) or 'none found'})"
        for entry in result.unmatched
    ]
    if not result.registry.connectors() and not problems and result.warnings:
        problems += [f"no connector to serve: {source} {reason}" for source, reason in result.warnings.items()]
    if not result.registry.connectors() and not problems:
        problems.append(
            "no connector to serve: name a module with -m, or install a package with 'flyteconnect.connectors' "
            "entry points (and keep --entry-points)"
        )
    return problems


def _child_args(ctx: click.Context, index: int, port: int, metrics_dir: str | None) -> list[str]:
    """This command's options re-rendered for worker ``index`` (single process, shared port, metrics to a file)."""
    args = ["serve"]
    assert isinstance(ctx.command, click.Command)
    overrides: dict[str, Any] = {
        "workers": 1,
        "port": port,
        "metrics_port": 0,
        "metrics_dir": metrics_dir,
        "worker_index": index,
    }
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        value = overrides.get(param.name, ctx.params.get(param.name))
        if param.is_flag:
            if param.secondary_opts:
                args.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                args.append(param.opts[0])
        elif param.multiple:
            for item in value or ():
                args += [param.opts[0], str(item)]
        elif value is not None:
            args += [param.opts[0], str(value)]
    return args


@click.command()
@common_discovery_options
@click.option("--host", default="[::]", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="gRPC port (0 picks a free one).")
@click.option("--metrics-port", default=9090, show_default=True, type=int, help="Prometheus HTTP port (0 disables).")
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address of the metrics endpoint.")
@click.option(
    "--protocol",
    "protocols",
    default=None,
    metavar="v1,v2",
    help="Protocols to serve (default: every installed one; v2 needs flyteidl2).",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Processes sharing the port.")
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1),
    help="Worker threads per process for connector methods written as plain def (default: max(32, 4 x CPUs)).",
)
@click.option("--timeout", default=60.0, show_default=True, type=float, help="Bound of one connector call, seconds.")
@click.option("--grace", default=30.0, show_default=True, type=float, help="Seconds to finish in-flight calls on stop.")
@click.option("--max-message-size", default="64MiB", show_default=True, help="Largest request/response (e.g. 16MiB).")
@click.option(
    "--stall-threshold", default=0.5, show_default=True, type=float, help="Event-loop stall warning, seconds."
)
@click.option(
    "--quarantine/--no-quarantine",
    default=True,
    show_default=True,
    help="Run async methods caught blocking the loop on a separate loop thread.",
)
@click.option("--transient-retries", default=2, show_default=True, type=int, help="Retries of a transient get failure.")
@click.option(
    "--transient-max-consecutive",
    default=10,
    show_default=True,
    type=int,
    help="Consecutive transiently failed polls of one job before answering RETRYABLE_FAILED.",
)
@click.option(
    "--egress-allow",
    "egress_allow",
    multiple=True,
    metavar="CIDR_OR_HOST",
    help="Let connectors reach this network (CIDR or address) or host name (*.suffix for subdomains) that the "
    "egress policy refuses by default; repeatable, adds to $FLYTECONNECT_EGRESS_ALLOW.",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate chain.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option("--tls-client-ca", type=click.Path(exists=True, dir_okay=False), help="Require client certs by this CA.")
@click.option(
    "--sensor-allow-protocol",
    "sensor_protocols",
    multiple=True,
    metavar="PROTOCOL",
    help="Remote protocol the file sensor may watch anywhere; repeatable, replaces the default object stores "
    "(s3, gs, abfs and aliases; 'none': no remote protocol). Env: FLYTECONNECT_SENSOR_ALLOW_PROTOCOLS (commas).",
)
@click.option(
    "--sensor-root",
    "sensor_roots",
    multiple=True,
    metavar="DIR|URL",
    help="Local directory (or URL prefix, e.g. s3://bucket/prefix) the file sensor may watch under; repeatable. "
    "No local file is watched without one. Env: FLYTECONNECT_SENSOR_ROOTS (commas).",
)
@click.option(
    "--output-allow-protocol",
    "output_protocols",
    multiple=True,
    metavar="PROTOCOL",
    help="Remote protocol connectors may write outputs to; repeatable, replaces the default object stores "
    "(s3, gs, abfs and aliases; 'none': no remote protocol). Env: FLYTECONNECT_OUTPUT_ALLOW_PROTOCOLS (commas).",
)
@click.option(
    "--output-root",
    "output_roots",
    multiple=True,
    metavar="DIR|URL",
    help="Local directory (or URL prefix) connectors may write outputs under; repeatable. No local file is written "
    "without one. Env: FLYTECONNECT_OUTPUT_ROOTS (commas).",
)
@click.option(
    "--postgres-allow-caller-dsn",
    is_flag=True,
    default=None,
    help="Let PostgreSQL tasks bring their own connection string (custom.dsn, or a Flyte 2 request's postgres_dsn "
    "secret), checked against the egress policy. Env: FLYTECONNECT_POSTGRES_ALLOW_CALLER_DSN=1.",
)
@click.option(
    "--state-url",
    envvar="FLYTECONNECT_STATE_URL",
    default=None,
    metavar="URL",
    help="Where poll results, idempotency records and callback results live: memory:// (default, this process) or "
    "redis://HOST:PORT/DB shared by replicas. Env: FLYTECONNECT_STATE_URL.",
)
@click.option(
    "--connector-config",
    envvar="FLYTECONNECT_CONNECTOR_CONFIG",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help='Per-connector settings, JSON: {"<connector or task_v0>": {"poll_interval": 30, "rate": 5}}.',
)
@click.option(
    "--connector-setting",
    "connector_setting_items",
    multiple=True,
    metavar="NAME:KEY=VALUE",
    help="One per-connector setting (poll_interval, terminal_ttl, rate, burst, max_concurrency, idempotent_create, "
    "timeout...), overriding --connector-config; repeatable.",
)
@click.option("--callback-port", type=click.IntRange(0, 65535), default=None, help="Serve job callbacks on this port.")
@click.option("--callback-host", default="0.0.0.0", show_default=True, help="Address of the callback server.")
@click.option(
    "--callback-url-base",
    default=None,
    metavar="URL",
    help="Where external systems reach the callback server, e.g. https://connectors.example.com (default: host:port).",
)
@click.option(
    "--callback-key-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Callback signing keys, one per line, newest first (default: $FLYTECONNECT_CALLBACK_KEYS, commas).",
)
@click.option("--callback-ttl", default=86_400.0, show_default=True, type=float, help="Callback URL lifetime, s.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Log lines.")
@click.option("--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING or ERROR.")
@click.option("--debug", is_flag=True, help="Add traceback frames to error details sent to callers.")
@click.option("--strict", is_flag=True, help="Also refuse to start when an entry-point plugin fails to load.")
@click.option(
    "--keep-going",
    is_flag=True,
    help="Serve what loaded when a -m module or --connector entry fails (health flyteconnect.Connectors: NOT_SERVING).",
)
@limit_options
@click.option("--worker-index", type=int, default=None, hidden=True)
@click.option("--metrics-dir", default=None, hidden=True)
@click.pass_context
def serve(ctx: click.Context, /, **opts: Any) -> None:
    """Serve connectors over gRPC (Flyte 1 and Flyte 2 protocols)."""
    # A stop signal before the server serves (importing connectors can take seconds) is a clean exit 0, not a death
    # by the signal: a Kubernetes rollout may stop a pod that is still starting.
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt_startup)
    # Loading grpc, the protos and the connectors allocates ~50k long-lived objects and almost no garbage: the
    # collector would rescan them dozens of times while loading (tens of ms of start-up). The server's tune_gc
    # freezes them and turns it back on once serving; the finally restores it on every other way out.
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        _serve_command(ctx, opts)
    except StartupInterrupted:
        click.echo("stopped before serving", err=True)
    finally:
        if gc_enabled:
            gc.enable()


def _serve_command(ctx: click.Context, opts: dict[str, Any]) -> None:
    from flyteconnect.server.logs import configure_logging

    configure_logging(opts["log_level"], opts["log_format"])
    _configure_storage_reach(opts)
    _configure_egress(opts["egress_allow"])
    worker = opts["worker_index"]
    supervisor = os.environ.get("FLYTECONNECT_SUPERVISOR")
    if worker is not None and supervisor and supervisor.isdigit():
        from flyteconnect.server.workers import follow_supervisor

        follow_supervisor(int(supervisor))
    if opts["strict"] and opts["keep_going"]:
        raise click.UsageError("--strict and --keep-going contradict each other: choose one")
    result = discover(opts["modules"], opts["entry_points"], opts["connectors"], opts["flytekit_plugins"])
    if worker is None:
        if opts["log_format"] == "json":
            log_table(result)  # one JSON record per connector, failure and warning: nothing else on the streams
        elif sys.stderr.isatty():
            from rich.console import Console

            console = Console(stderr=True)
            console.print(connector_table(result, "flyteconnect serves"))
            report_failures(console, result)
        else:  # logs and pipes: plain lines, and no rich import at start-up (about 0.1 s)
            click.echo(plain_table(result), err=True)
            for source, reason in result.failures.items():
                click.echo(f"failed to load {source}: {reason}", err=True)
            for source, reason in result.warnings.items():
                click.echo(f"warning: {source} {reason}", err=True)
    problems = readiness_problems(result, opts["strict"])
    if problems and not opts["keep_going"]:
        for problem in problems:
            say_problem(opts["log_format"], "error", problem)
        hint = "" if opts["strict"] else ", or pass --keep-going to serve the rest"
        raise click.ClickException(f"not serving: fix the problems above{hint}")
    for problem in problems:
        say_problem(opts["log_format"], "warning", f"{problem} (--keep-going: serving the rest)")
    if not opts["strict"]:  # reported and skipped; health's flyteconnect.Connectors still says something is missing
        problems += [f"{source} failed to load ({reason})" for source, reason in result.plugin_failures().items()]
    try:
        max_size = parse_size(opts["max_message_size"])
    except ValueError:
        raise click.BadParameter(f"not a size: {opts['max_message_size']}", param_hint="--max-message-size") from None
    if opts["workers"] > 1 and opts["callback_port"] is not None and not _shared_state(opts["state_url"]):
        raise click.BadParameter("with --workers > 1, callbacks need a shared --state-url (redis://...)")
    limits = limits_from(opts)  # malformed values are usage errors before anything starts
    if opts["workers"] > 1:
        gc.enable()  # the supervisor only watches its workers: nothing to freeze
        sys.exit(_supervise(ctx, opts))
    config = _server_config(opts, max_size, limits)
    try:
        import asyncio  # here, not at the top: imported with the collector off (see serve)

        asyncio.run(_serve(result.registry, config, worker, problems, announce_line(opts["log_format"])))
    except (OSError, RuntimeError, ValueError) as e:
        raise click.ClickException(bind_error(opts["host"], opts["port"], e) or str(e)) from None


def _configure_storage_reach(opts: dict[str, Any]) -> None:
    """Set the file sensor's and the outputs' reach from the options, else from the environment (each on its own)."""
    from flyteconnect.connectors.sensor_reach import SensorReach, set_default_reach
    from flyteconnect.connectors.storage_reach import OutputReach, StorageReach, set_output_reach

    def reach(kind: type[StorageReach], protocols_key: str, roots_key: str) -> Any:
        env_protocols = os.environ.get(kind.ENV_PROTOCOLS)
        protocols = opts[protocols_key] or (env_protocols.split(",") if env_protocols is not None else None)
        roots = opts[roots_key] or os.environ.get(kind.ENV_ROOTS, "").split(",")
        try:
            return kind.from_options(protocols, roots)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint=f"{kind.PROTOCOL_OPTION}/{kind.ROOT_OPTION}") from None

    set_default_reach(reach(SensorReach, "sensor_protocols", "sensor_roots"))
    set_output_reach(reach(OutputReach, "output_protocols", "output_roots"))
    if opts["postgres_allow_caller_dsn"]:
        from flyteconnect.connectors.postgres_dsn import allow_caller_dsn

        allow_caller_dsn(True)


def _configure_egress(allow: Sequence[str]) -> None:
    """Set the process's egress policy from ``--egress-allow`` and the environment, refusing malformed entries.

    Without either, nothing is imported here: the policy module loads when a connector first fetches a URL.
    """
    if not allow and not os.environ.get("FLYTECONNECT_EGRESS_ALLOW"):
        return
    from flyteconnect import egress

    try:
        policy = egress.EgressPolicy.from_env().merged(egress.EgressPolicy.from_allow(allow))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--egress-allow / FLYTECONNECT_EGRESS_ALLOW") from None
    egress.configure(policy)


def _server_config(opts: dict[str, Any], max_size: int, limits: Any) -> Any:
    from flyteconnect.cli.connector_settings import connector_settings
    from flyteconnect.server.app import ServerConfig
    from flyteconnect.server.dispatch import DispatchConfig, default_threads

    try:
        per_connector = connector_settings(opts["connector_config"], opts["connector_setting_items"])
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--connector-config/--connector-setting") from None

    protocols = [p.strip() for p in opts["protocols"].split(",") if p.strip()] if opts["protocols"] else None
    return ServerConfig(
        host=opts["host"],
        port=opts["port"],
        metrics_port=opts["metrics_port"] or None,
        metrics_host=opts["metrics_host"],
        metrics_dir=opts["metrics_dir"],
        protocols=protocols,
        max_message_size=max_size,
        grace=opts["grace"],
        tls_cert=opts["tls_cert"],
        tls_key=opts["tls_key"],
        tls_client_ca=opts["tls_client_ca"],
        reuse_port=opts["worker_index"] is not None,
        limits=limits,
        tune_gc=True,
        state_url=opts["state_url"],
        callback=_callback_config(opts),
        dispatch=DispatchConfig(
            threads=opts["threads"] or default_threads(),
            timeout=opts["timeout"] or None,
            stall_threshold=opts["stall_threshold"] or None,
            quarantine=opts["quarantine"],
            transient_retries=opts["transient_retries"],
            transient_max_consecutive=opts["transient_max_consecutive"],
            debug=opts["debug"],
            connectors=per_connector,
        ),
    )


def _shared_state(url: str | None) -> bool:
    return bool(url) and not str(url).startswith("memory:")


def _callback_config(opts: dict[str, Any]) -> Any:
    if opts["callback_port"] is None:
        return None
    from flyteconnect.server.callback_server import CallbackConfig

    return CallbackConfig(
        port=opts["callback_port"],
        host=opts["callback_host"],
        url_base=opts["callback_url_base"],
        key_file=opts["callback_key_file"],
        token_ttl=opts["callback_ttl"],
        reuse_port=opts["worker_index"] is not None,
    )


async def _serve(registry: Any, config: Any, worker: int | None, problems: list[str], announce: Any = print) -> None:
    import asyncio

    from flyteconnect.server.app import ConnectorServer
    from flyteconnect.server.workers import probe_host

    # From here a stop signal sets ``stop`` (the server drains, or stops right after starting) instead of raising.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    server = ConnectorServer(registry, config, load_problems=problems)
    port = await server.start()
    who = f"worker {worker} " if worker is not None else ""
    if not stop.is_set():
        announce(f"{who}listening on {listen_address(config.host, port)}")
        if server.callback_port is not None:
            announce(f"{who}callbacks on http://{probe_host(config.callback.host)}:{server.callback_port}/callback/")
        if server.metrics_port is not None:
            announce(f"{who}metrics on http://{probe_host(config.metrics_host)}:{server.metrics_port}/metrics")
    await server.serve_until(stop)
    announce(f"{who}stopped")


def _supervise(ctx: click.Context, opts: dict[str, Any]) -> int:
    import shutil
    import tempfile

    from flyteconnect.server.workers import Supervisor, reserve_port

    try:
        reserved = reserve_port(opts["host"], opts["port"])
    except OSError as e:
        raise click.ClickException(f"cannot listen on {opts['host']}:{opts['port']}: {e}") from None
    port = reserved.getsockname()[1]
    # One metrics endpoint for every worker: they write snapshots to a folder this process owns and removes.
    metrics_dir = tempfile.mkdtemp(prefix="flyteconnect-metrics-") if opts["metrics_port"] else None
    supervisor = Supervisor(
        opts["workers"],
        lambda i: Supervisor.python_command(_child_args(ctx, i, port, metrics_dir)),
        grace=opts["grace"],
    )
    httpd = None
    try:
        if metrics_dir is not None:
            from flyteconnect.server.worker_metrics import MergedMetrics, serve_merged

            try:
                merged = MergedMetrics(metrics_dir, supervisor.live_pids)
                httpd = serve_merged(opts["metrics_port"], opts["metrics_host"], merged)
            except OSError as e:
                raise click.ClickException(str(e)) from None
        return _run_supervisor(supervisor, opts, port, httpd)
    finally:
        reserved.close()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_supervisor(supervisor: Any, opts: dict[str, Any], port: int, httpd: Any) -> int:
    import socket
    import threading
    import time

    from flyteconnect.server.workers import probe_host

    host = probe_host(opts["host"])

    def announce() -> None:
        # Announce once a worker accepts connections (the reserved socket itself never listens).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((host, port)) == 0:
                    where = listen_address(opts["host"], port)
                    announce_line(opts["log_format"])(
                        f"listening on {where} ({opts['workers']} workers, pid {os.getpid()})"
                    )
                    return
            time.sleep(0.05)

    threading.Thread(target=announce, daemon=True).start()
    if httpd is not None:
        metrics_host = probe_host(opts["metrics_host"])
        announce_line(opts["log_format"])(f"metrics on http://{metrics_host}:{httpd.server_port}/metrics (all workers)")
    return int(supervisor.run())
