"""Port a connector module and the modules of its own package it imports, into an output tree.

A plugin's connector module usually imports helpers from its package (``flytekitplugins.mmcloud.utils``,
``..ssh_utils``); those are ported too, following imports transitively, and written under the output directory at
the same package paths. The packages on the way get an empty ``__init__.py``: the originals import the task-side
modules (``task.py``) that a connector server neither needs nor can import without flytekit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flyteconnect.migrate.codemod import Finding, rewrite_source

__all__ = ["Migration", "migrate"]

_STUB_INIT = '"""Written by `flyteconnect migrate`: the original package imports task-side modules."""\n'


@dataclass
class Migration:
    """What ``migrate`` wrote and found: module path -> findings; the dotted name to load the entry module by."""

    written: dict[Path, Path] = field(default_factory=dict)  # source -> output
    findings: dict[Path, list[Finding]] = field(default_factory=dict)
    module_name: str = ""

    @property
    def ported(self) -> bool:
        """True when every module ported completely."""
        return not any(f.blocking for fs in self.findings.values() for f in fs)


def _package_chain(path: Path) -> list[str]:
    """Names of the packages containing ``path``, outermost first: regular packages, and directories without an
    ``__init__.py`` directly inside one (implicit namespace subpackages, reached by relative imports)."""
    chain: list[str] = []
    directory = path.parent
    while (directory / "__init__.py").is_file() or (directory.parent / "__init__.py").is_file():
        chain.insert(0, directory.name)
        directory = directory.parent
    return chain


def _base(path: Path, chain: list[str]) -> Path:
    """The directory the module's dotted name is relative to. A namespace directory above the package (such as
    ``flytekitplugins``) belongs to the name when the package's own modules spell it (``flytekitplugins.mmcloud``)."""
    base = path.parent
    for _ in chain:
        base = base.parent
    if chain and base.name.isidentifier() and not (base / "__init__.py").exists():
        spelled = f"{base.name}.{chain[0]}"
        for module in (base / chain[0]).rglob("*.py"):
            if spelled in module.read_text(errors="replace"):
                return base.parent
    return base


def _resolve(base: Path, dotted: str) -> Path | None:
    candidate = base.joinpath(*dotted.split("."))
    for option in (candidate.with_suffix(".py"), candidate / "__init__.py"):
        if option.is_file():
            return option
    return None


def _module_of(base: Path, path: Path) -> str:
    rel = path.relative_to(base).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def migrate(source: Path, out: Path) -> Migration:
    """Port ``source`` and the local modules it imports; write them under ``out`` (or to ``out`` itself, a .py
    path, when the module imports nothing local)."""
    source = source.resolve()
    first = rewrite_source(source.read_text())
    chain = _package_chain(source)
    base = _base(source, chain)
    top = base / _module_of(base, source).split(".")[0]
    result = Migration(module_name=_module_of(base, source))
    queue = [(source, first)]
    seen = {source}
    rewrites = {}
    while queue:
        path, rewrite = queue.pop()
        rewrites[path] = rewrite
        result.findings[path] = rewrite.findings
        package = (
            _module_of(base, path).split(".")[:-1] if path.name != "__init__.py" else _module_of(base, path).split(".")
        )
        for level, module, names in rewrite.imports:
            if level:
                prefix = package[: len(package) - (level - 1)] if level > 1 else package
                module = ".".join([*prefix, module] if module else prefix)
            for dotted in (module, *(f"{module}.{n}" for n in names)):
                found = _resolve(base, dotted) if dotted else None
                if found is None or found in seen or found.name == "__init__.py":
                    continue
                local = (top.is_dir() and top in found.parents) or (not chain and found.parent == source.parent)
                if local:
                    seen.add(found)
                    queue.append((found, rewrite_source(found.read_text())))
    single = len(rewrites) == 1 and not chain
    for path, rewrite in rewrites.items():
        target = out if single and out.suffix == ".py" else out / path.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rewrite.code)
        result.written[path] = target
        directory = path.parent
        while directory != base and (directory / "__init__.py").is_file():
            init = out / (directory / "__init__.py").relative_to(base)
            if not init.exists():
                init.write_text(_STUB_INIT)
            directory = directory.parent
    return result


def display(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)
