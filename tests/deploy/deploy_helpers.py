"""Paths and parsers shared by the deployment tests (manifests, Dockerfile, .dockerignore, docs code blocks)."""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "kubernetes"
BASE_DIR = K8S_DIR / "base"
DOCS = ROOT / "docs" / "deploying.md"

Manifest = dict[str, Any]

KUBECTL = shutil.which("kubectl")
# kubectl ships with this project's machine image; a missing one fails these tests loudly rather than skipping them.
needs_kubectl = pytest.mark.usefixtures("kubectl_present")


def kustomize(directory: Path) -> list[Manifest]:
    """Render a kustomization with kubectl's built-in kustomize (offline); a fresh copy of a cached render."""
    return copy.deepcopy(_kustomize(str(directory)))


@functools.cache
def _kustomize(directory: str) -> list[Manifest]:
    assert KUBECTL is not None
    out = subprocess.run([KUBECTL, "kustomize", directory], capture_output=True, text=True, timeout=60, check=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def load_manifests(directory: Path) -> dict[str, list[Manifest]]:
    """Every Kubernetes object in ``directory``'s YAML files (kustomization excluded), keyed by relative file name."""
    found: dict[str, list[Manifest]] = {}
    for path in sorted(directory.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found[str(path.relative_to(directory))] = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def only(manifests: dict[str, list[Manifest]], kind: str) -> Manifest:
    """The single object of ``kind`` among ``manifests`` (fails when there are none or several)."""
    matches = [doc for docs in manifests.values() for doc in docs if doc["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def mebibytes(quantity: str) -> float:
    """A Kubernetes memory quantity in MiB (the suffixes these manifests use)."""
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**20


@dataclass
class Instruction:
    """One Dockerfile instruction: keyword (upper-cased), flags such as ``--from=build``, and the rest."""

    keyword: str
    flags: dict[str, str]
    value: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form ENTRYPOINT/CMD (fails for shell form)."""
        parsed = json.loads(self.value)
        assert isinstance(parsed, list) and all(isinstance(x, str) for x in parsed), self.value
        return parsed


@dataclass
class Stage:
    """A build stage: its FROM image, optional name, and its instructions after FROM."""

    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        """This stage's instructions with ``keyword``."""
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    """A parsed Dockerfile: global ARG defaults and the stages in order."""

    args: dict[str, str]
    stages: list[Stage]

    def expand(self, text: str) -> str:
        """Substitute ``${NAME}``/``$NAME`` with the global ARG defaults (as FROM lines see them)."""
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.args.get(m.group(1), m.group(0)), text)


_FLAG = re.compile(r"--([a-z-]+)=(\S+)\s*")


def parse_dockerfile(text: str) -> Dockerfile:
    """Parse instructions (comments dropped, backslash continuations joined); enough for structural checks."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # comment lines inside a continuation are skipped, as Docker does
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"

    result = Dockerfile(args={}, stages=[])
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        rest = rest.strip()
        while match := _FLAG.match(rest):
            flags[match.group(1)] = match.group(2)
            rest = rest[match.end() :]
        if keyword == "FROM":
            image, *name = re.split(r"\s+as\s+", rest, maxsplit=1, flags=re.IGNORECASE)
            result.stages.append(Stage(image=image, name=name[0] if name else None))
        elif keyword == "ARG" and not result.stages:
            name, _, default = rest.partition("=")
            result.args[name] = default.strip('"')
        else:
            assert result.stages, f"{keyword} before the first FROM"
            result.stages[-1].instructions.append(Instruction(keyword, flags, rest))
    return result


def dockerignore_excludes(patterns_text: str, path: str) -> bool:
    """Whether .dockerignore excludes ``path`` (Docker's rules: last matching pattern wins, ``!`` re-includes,
    a pattern that matches a directory covers everything below it)."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns_text.splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            excluded = not negate
    return excluded


def code_blocks(markdown: str, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in a markdown text (blocks indented under list items included)."""
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", markdown, flags=re.S | re.M)
    return [textwrap.dedent(body) for _, body in blocks]
