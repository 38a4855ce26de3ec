"""Generate tests/golden/literals.json: flytekit's literals for the corpus in tests/golden/golden_cases.py.

Needs flytekit (not a flyteconnect dependency); run it with the reference venv:

    /work/.venv-ref/bin/python tools/make_golden_literals.py

For each case it records flytekit's LiteralType and Literal (deterministically serialized, base64) and the Python
value flytekit reads back from the serialized literal (described as JSON by ``golden_cases.describe``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
sys.path.insert(0, str(GOLDEN))
os.environ.setdefault("FLYTE_SDK_LOGGING_LEVEL", "40")


def main() -> None:
    import flytekit
    import golden_cases
    from flyteidl.core import literals_pb2
    from flytekit import FlyteContextManager
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.literals import Literal
    from flytekit.types.directory import FlyteDirectory
    from flytekit.types.file import FlyteFile
    from flytekit.types.structured import StructuredDataset

    logging.getLogger("flytekit").setLevel(logging.ERROR)
    kit = types.SimpleNamespace(FlyteFile=FlyteFile, FlyteDirectory=FlyteDirectory, StructuredDataset=StructuredDataset)
    ctx = FlyteContextManager.current_context()
    out = []
    for case in golden_cases.make_cases(kit):
        lt = TypeEngine.to_literal_type(case.type)
        lit = TypeEngine.to_literal(ctx, case.value, case.type, lt)
        lit_bytes = lit.to_flyte_idl().SerializeToString(deterministic=True)
        # Read back from the bytes (not the in-memory model, which caches Python values).
        parsed = literals_pb2.Literal()
        parsed.ParseFromString(lit_bytes)
        back = TypeEngine.to_python_value(ctx, Literal.from_flyte_idl(parsed), case.type)
        out.append(
            {
                "name": case.name,
                "type": golden_cases.type_label(case.type),
                "literal": base64.b64encode(lit_bytes).decode(),
                "literal_type": base64.b64encode(lt.to_flyte_idl().SerializeToString(deterministic=True)).decode(),
                "python": golden_cases.describe(back),
            }
        )
    doc = {"generator": "tools/make_golden_literals.py", "flytekit": flytekit.__version__, "cases": out}
    path = GOLDEN / "literals.json"
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(out)} cases to {path.relative_to(ROOT)} (flytekit {flytekit.__version__})")


if __name__ == "__main__":
    main()
