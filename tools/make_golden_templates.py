"""Write TaskTemplates and inputs serialized by flytekit for the built-in connectors' task types.

Run with a Python that has flytekit (a scratch virtualenv): ``python tools/make_golden_templates.py``. The output,
``tests/golden/templates/*.pb``, is committed; ``tests/connectors/test_flytekit_templates.py`` runs flyteconnect's
built-in connectors on exactly these bytes, proving a flytekit-authored task runs unchanged.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path

from flytekit import FlyteContextManager
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.type_engine import TypeEngine
from flytekit.extras.webhook import WebhookTask
from flytekit.sensor.file_sensor import FileSensor
from flytekit.tools.translator import get_serializable

OUT = Path(__file__).resolve().parents[1] / "tests" / "golden" / "templates"
SETTINGS = SerializationSettings(image_config=ImageConfig.auto_default_image(), project="p", domain="d", version="v1")


def template_bytes(task: object) -> bytes:
    return get_serializable(OrderedDict(), SETTINGS, task).template.to_flyte_idl().SerializeToString()  # type: ignore


def inputs_bytes(values: dict[str, object], types: dict[str, type]) -> bytes:
    ctx = FlyteContextManager.current_context()
    lm = asyncio.run(TypeEngine._dict_to_literal_map(ctx, values, types))  # type: ignore[attr-defined]
    return lm.to_flyte_idl().SerializeToString()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    post = WebhookTask(
        name="notify",
        url="{inputs.base_url}/echo/{inputs.run_id}",
        method="POST",
        headers={"Content-Type": "application/json", "X-Run": "{inputs.run_id}"},
        data={"text": "run {inputs.run_id} finished", "count": "{inputs.n}"},
        dynamic_inputs={"base_url": str, "run_id": str, "n": int},
        show_data=True,
        show_url=True,
    )
    get = WebhookTask(
        name="lookup",
        url="{inputs.base_url}/echo",
        method="GET",
        data={"q": "{inputs.run_id}"},
        dynamic_inputs={"base_url": str, "run_id": str},
    )
    sensor = FileSensor(name="wait_for_file")
    files = {
        "webhook_post.template.pb": template_bytes(post),
        "webhook_get.template.pb": template_bytes(get),
        "file_sensor.template.pb": template_bytes(sensor),
        # The base URL is filled in by the test (its HTTP server's port is not known here).
        "webhook_post.inputs.pb": inputs_bytes({"run_id": "r-42", "n": 3}, {"run_id": str, "n": int}),
        "webhook_get.inputs.pb": inputs_bytes({"run_id": "r-7"}, {"run_id": str}),
    }
    for name, data in files.items():
        (OUT / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
