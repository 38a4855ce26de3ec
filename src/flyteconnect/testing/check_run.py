"""The ``run`` check of ``flyteconnect check``: one job driven the way the server drives it.

``create`` with inputs the author supplies (``--input name=value``) or that are derived from the task the module
defines for the connector (example values of its input types); ``get`` until a terminal phase within a budget;
``delete`` twice; outputs converted to literals with the server's own conversion and then to the task's declared
types. Results go through the in-process backend, which refuses what the server refuses
(``flyteconnect.local.contract``), so a ``create`` returning a dict or outputs holding an object fail here, naming
the method's file and line, instead of as INTERNAL in production. Without a task and without inputs, ``create`` gets
no inputs: what it raises then is a warning (the inputs were made up), what it returns is still checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import traceback
import types
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from flyteconnect.connector import ConnectorBase, Phase, is_terminal_phase
from flyteconnect.local.contract import ConnectorContractError
from flyteconnect.local.runner import ExecutableTask

__all__ = ["derive_inputs", "run_check", "task_for"]

MAX_POLL_DELAY = 1.0
"""Seconds between two ``get`` calls at most (the first comes after 50 ms, then 1.5 x longer each time)."""

_OURS = (os.path.dirname(os.path.dirname(__file__)), os.path.dirname(asyncio.__file__))


def task_for(module: types.ModuleType, connector: ConnectorBase) -> Any:
    """The first task ``module`` defines for ``connector``'s task category, or None."""
    for value in vars(module).values():
        if isinstance(value, ExecutableTask) and not isinstance(value, type):
            template = value.task_template()
            if (template.type, template.task_type_version) == (connector.task_type_name, connector.task_type_version):
                return value
    return None


def derive_inputs(task: Any, supplied: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """Inputs for the run: the author's (text, parsed with the task's types) and examples for the rest.

    Returns the inputs and where they came from (for the report); raises ValueError saying which input is missing.
    """
    from flyteconnect.local.inputs import parse_inputs

    if task is None:
        return {name: _json_or_text(text) for name, text in supplied.items()}, "given" if supplied else "none"
    from flyteconnect.testing.check import _example

    declared = dict(task.input_types)
    # --input applies to every connector checked: names another task takes are left out here, and said so.
    ignored = sorted(set(supplied) - set(declared))
    inputs = parse_inputs(declared, {k: v for k, v in supplied.items() if k in declared}, {})
    made_up = []
    for name, tp in declared.items():
        if name not in inputs:
            try:
                inputs[name] = _example(tp)
            except TypeError:
                raise ValueError(f"no example value for input {name!r} ({tp!r}): pass --input {name}=VALUE") from None
            made_up.append(name)
    origin = f"task {task.name!r}" + (f", example values for {', '.join(made_up)}" if made_up else "")
    if ignored:
        origin += f", --input {', '.join(ignored)} not among its inputs"
    return inputs, origin


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def where_raised(error: BaseException) -> str:
    """``file:line in function`` of the last frame outside flyteconnect and asyncio: the author's line."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(_OURS)]
    if not frames:
        return ""
    frame = frames[-1]
    filename = (
        os.path.relpath(frame.filename) if not os.path.relpath(frame.filename).startswith("..") else frame.filename
    )
    return f" at {filename}:{frame.lineno} in {frame.name}"


async def run_check(
    connector: ConnectorBase,
    task: Any,
    inputs: Mapping[str, Any],
    origin: str,
    *,
    timeout: float,
    budget: float,
    watch: Callable[[str, Any], Any],
) -> list[tuple[str, str, str]]:
    """Drive one job; returns ``(check, status, detail)`` rows for ``run``, ``outputs`` and ``delete twice``.

    ``watch(key, awaitable)`` awaits one connector call while measuring how long it blocks the event loop.
    """
    from flyteconnect.local.backend import InProcessBackend
    from flyteconnect.local.outputs import default_raw_prefix, join_uri, make_output_dir
    from flyteconnect.registry import ConnectorRegistry
    from flyteconnect.testing._task import minimal_template, prepare_task

    prepared = prepare_task(task if task is not None else minimal_template(connector.task_category), dict(inputs))
    output_prefix = join_uri(default_raw_prefix(), "c" + uuid.uuid4().hex[:19])
    make_output_dir(output_prefix)
    job = prepared.job(output_prefix)
    backend = InProcessBackend(ConnectorRegistry([connector]), stall_threshold=None)
    rows: list[tuple[str, str, str]] = []
    handle: Any = None
    step = "do" if connector.is_sync else "create"
    polls = 0
    try:
        if connector.is_sync:
            resource = await asyncio.wait_for(watch("do (run)", backend.do(job)), timeout)
        else:
            handle = await asyncio.wait_for(watch("create (run)", backend.create(job)), timeout)
            step, delay, waited = "get", 0.05, 0.0
            while True:
                resource = await asyncio.wait_for(watch("get (run)", backend.get(job, handle)), timeout)
                polls += 1
                if is_terminal_phase(resource.phase):
                    break
                if waited >= budget:
                    phase = Phase(resource.phase).name
                    rows.append(("run", "warn", f"still {phase} after {budget:g}s ({origin}): raise --budget"))
                    return rows + await _delete_twice(backend, job, handle, timeout, watch)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 1.5, MAX_POLL_DELAY)
    except ConnectorContractError as e:
        rows.append(("run", "fail", str(e) if "INTERNAL" in str(e) else f"{e} (the server answers INTERNAL)"))
    except asyncio.TimeoutError:
        rows.append(("run", "fail", f"{step} did not return within {timeout:g}s"))
    except Exception as e:
        detail = f"{step} raised {type(e).__name__}: {e}{where_raised(e)}"
        if origin == "none":  # the connector was given no inputs at all: it may rightly refuse
            detail += "; define a task for this connector in the module or pass --input name=VALUE"
            rows.append(("run", "warn", detail))
        else:
            rows.append(("run", "fail", f"{detail} (inputs: {origin})"))
    else:
        path = "do" if connector.is_sync else f"create, get x{polls}"
        rows.append(("run", "pass", f"{path} -> {Phase(resource.phase).name} (inputs: {origin})"))
        if resource.phase == Phase.SUCCEEDED:
            rows.append(await _outputs(prepared, resource, output_prefix))
    if handle is not None:
        rows += await _delete_twice(backend, job, handle, timeout, watch)
    return rows


async def _outputs(prepared: Any, resource: Any, output_prefix: str) -> tuple[str, str, str]:
    """The outputs as literals (the server already took them) and as the task's declared types."""
    from flyteconnect.literals import literal_map_to_python, to_literal_map_proto
    from flyteconnect.local.outputs import read_outputs_pb

    declared = dict(prepared.output_types)
    try:
        if resource.outputs is not None:
            literals = to_literal_map_proto(resource.outputs, declared or None)
        elif declared:
            literals = await asyncio.to_thread(read_outputs_pb, output_prefix, {})
        else:
            return ("outputs", "pass", "none returned, none declared")
        missing = [name for name in declared if name not in literals.literals]
        if missing:
            return ("outputs", "fail", f"the task declares output(s) {', '.join(missing)} that the job did not return")
        values = literal_map_to_python(literals, declared, what="output")
    except Exception as e:
        return ("outputs", "fail", f"{type(e).__name__}: {e}")
    return ("outputs", "pass", ", ".join(f"{k}={v!r}" for k, v in values.items()) or "empty")


async def _delete_twice(
    backend: Any, job: Any, handle: Any, timeout: float, watch: Callable[[str, Any], Any]
) -> list[tuple[str, str, str]]:
    problems = []
    for attempt in ("first", "second"):
        try:
            await asyncio.wait_for(watch(f"delete ({attempt}, run)", backend.delete(job, handle)), timeout)
        except asyncio.TimeoutError:
            problems.append(f"{attempt} delete did not return within {timeout:g}s")
        except Exception as e:
            problems.append(f"{attempt} delete raised {type(e).__name__}: {e}{where_raised(e)}")
    detail = "; ".join(problems) or "deleting the job twice succeeded"
    return [("delete created job twice", "fail" if problems else "pass", detail)]
