"""`import flyteconnect` must stay light: no grpc, click or rich (checked in a fresh interpreter)."""

import subprocess
import sys


def test_import_does_not_pull_server_or_cli_dependencies() -> None:
    code = (
        "import sys, flyteconnect\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'click', 'rich', 'prometheus_client', "
        "'httpx', 'fsspec', 'psycopg'})\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import flyteconnect imported: {out.stdout.strip()}"
