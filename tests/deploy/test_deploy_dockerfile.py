"""The Dockerfile, linted structurally (no container engine here): stages, user, entry point, install step."""

from __future__ import annotations

import re
import shlex
from importlib.metadata import entry_points

import pytest
from deploy_helpers import ROOT, Dockerfile, Manifest, dockerignore_excludes, parse_dockerfile


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    """The repository's Dockerfile, parsed."""
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def test_multi_stage_on_the_slim_python_base(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    names = [s.name for s in dockerfile.stages]
    assert all(names) and len(set(names)) == len(names)
    for stage in dockerfile.stages:
        assert dockerfile.expand(stage.image) == "python:3.11-slim"
    runtime = dockerfile.stages[-1]
    # the runtime stage copies the built environment from an earlier stage, nothing is built there
    copies_from = [i.flags["from"] for i in runtime.all("COPY") if "from" in i.flags]
    assert copies_from and set(copies_from) <= set(names[:-1])
    assert not any("pip install" in i.value for i in runtime.all("RUN"))


def test_runtime_runs_as_the_unprivileged_user_the_pod_expects(dockerfile: Dockerfile, deployment: Manifest) -> None:
    (user,) = dockerfile.stages[-1].all("USER")
    uid, _, gid = user.value.partition(":")
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can verify it
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert (int(uid), int(gid)) == (pod_security["runAsUser"], pod_security["runAsGroup"])
    # the user must exist: it is created in the same stage, before USER
    run_text = " ".join(i.value for i in dockerfile.stages[-1].all("RUN"))
    assert f"--uid {uid}" in run_text


def test_entry_point_is_flyteconnect_serve(dockerfile: Dockerfile) -> None:
    runtime = dockerfile.stages[-1]
    (entrypoint,) = runtime.all("ENTRYPOINT")
    assert entrypoint.exec_form() == ["flyteconnect", "serve"]  # exec form: SIGTERM reaches the server, not a shell
    (script,) = entry_points(group="console_scripts", name="flyteconnect")
    assert script.value == "flyteconnect.cli.main:main"
    assert not runtime.all("HEALTHCHECK")  # Kubernetes probes gRPC health instead
    exposed = {int(p) for i in runtime.all("EXPOSE") for p in i.value.split()}
    assert exposed == {8000, 9090}


def readme_extras() -> set[str]:
    """The extras of the README's `pip install` of this project (e.g. ``'.[all]'``)."""
    readme = (ROOT / "README.md").read_text()
    found = {m.group(1) for m in re.finditer(r"pip install[^\n]*?['\"]?\.\[([a-z0-9,]+)\]", readme)}
    assert found, "the README has no `pip install '.[extras]'` command"
    return found


def test_install_step_is_the_readme_command(dockerfile: Dockerfile) -> None:
    installs = [i.value for s in dockerfile.stages for i in s.all("RUN") if "pip install" in i.value]
    assert len(installs) == 1
    words = shlex.split(installs[0].replace("${EXTRA_PIP_PACKAGES}", ""))
    targets = [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
    assert len(targets) == 1, targets
    source, _, extras = targets[0].partition("[")
    # the source tree the build stage copied, with the README's extras
    assert extras.rstrip("]") in readme_extras()
    copies = [i for s in dockerfile.stages for i in s.all("COPY") if "from" not in i.flags]
    copied = {i.value.split()[-1].rstrip("/") for i in copies}
    assert source.rstrip("/") in copied


def test_copied_files_exist_and_pass_dockerignore(dockerfile: Dockerfile) -> None:
    ignore = (ROOT / ".dockerignore").read_text()
    sources = [
        src for s in dockerfile.stages for i in s.all("COPY") if "from" not in i.flags for src in i.value.split()[:-1]
    ]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert not dockerignore_excludes(ignore, src), src
    assert not dockerignore_excludes(ignore, "src/flyteconnect/__init__.py")


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignore = (ROOT / ".dockerignore").read_text()
    unwanted = (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "src/flyteconnect/__pycache__/x.cpython-311.pyc")
    for path in unwanted:
        assert dockerignore_excludes(ignore, path), path
