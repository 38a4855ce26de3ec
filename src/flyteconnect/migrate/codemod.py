"""The rewrite of one module's source: flytekit imports and ``flytekit.x.y`` references to flyteconnect's.

Built on libcst, so formatting and comments survive. Ported imports are removed where they stood and added back as
flyteconnect imports (libcst's ``AddImportsVisitor`` merges them into the module's import block); a name that cannot
be ported keeps its flytekit import, so the output fails loudly at import instead of at request time, and is
reported with its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.helpers import get_full_name_for_node
from libcst.metadata import PositionProvider

from flyteconnect.migrate.rules import FLYTEKIT_DEPENDENCIES, MODULES, NAMES, PARTIAL, flytekit_module, unported_reason

__all__ = ["Finding", "Rewrite", "rewrite_source"]


@dataclass(frozen=True)
class Finding:
    """Something in a module the codemod did not port (``blocking``) or that a porter must act on (a note)."""

    line: int
    name: str
    message: str
    blocking: bool = True


@dataclass
class Rewrite:
    """The rewritten source of one module, what it could not port, and the modules it imports (for following)."""

    code: str
    findings: list[Finding] = field(default_factory=list)
    imports: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)
    """(relative level, module, names) of every ``import``/``from ... import`` in the module."""

    @property
    def ported(self) -> bool:
        """True when nothing blocking was found."""
        return not any(f.blocking for f in self.findings)


def _dotted(node: cst.BaseExpression | None) -> str:
    return "" if node is None else (get_full_name_for_node(node) or "")


class _Port(VisitorBasedCodemodCommand):
    """Rewrites flytekit imports and attribute references; collects findings and imports."""

    METADATA_DEPENDENCIES = (PositionProvider,)
    DESCRIPTION = "flytekit connector module -> flyteconnect"

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self.findings: list[Finding] = []
        self.imports: list[tuple[int, str, tuple[str, ...]]] = []
        self.aliases: dict[str, str] = {}  # local name -> flytekit module it is bound to
        # flytekit modules imported as namespaces: (module, name in a from-import or None, asname), removed at the end
        # when every reference through them was ported
        self.module_imports: list[tuple[str, str | None, str | None]] = []
        self.partial: dict[str, tuple[str, frozenset[str]]] = {}  # local name -> (flytekit name, attributes it has)
        self.noted: set[str] = set()

    def _line(self, node: cst.CSTNode) -> int:
        return int(self.get_metadata(PositionProvider, node).start.line)

    def _unported(self, node: cst.CSTNode, module: str, name: str) -> None:
        full = f"{module}.{name}" if name else module
        self.findings.append(Finding(self._line(node), full, unported_reason(module, name)))

    def _add(self, target: tuple[str, str], local: str, flytekit_name: str = "") -> None:
        module, name = target
        if name in PARTIAL:
            self.partial[local] = (flytekit_name or name, PARTIAL[name])
        AddImportsVisitor.add_needed_import(self.context, module, name, None if local == name else local)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False  # its dotted module is not a reference to port (leave_ImportFrom handles the statement)

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            module = _dotted(alias.name)
            self.imports.append((0, module, ()))
            top = module.split(".")[0]
            if top in FLYTEKIT_DEPENDENCIES and top not in self.noted:
                self._note_dependency(node, top)
            if flytekit_module(module):
                asname = _dotted(alias.asname.name) if alias.asname is not None else None
                self.module_imports.append((module, None, asname))
                if asname is not None:
                    self.aliases[asname] = module
                else:
                    self.aliases["flytekit"] = "flytekit"  # `import flytekit.x.y` binds the name flytekit
        return False

    def _note_dependency(self, node: cst.CSTNode, top: str) -> None:
        self.noted.add(top)
        message = "came with flytekit; list it in the connector's own requirements"
        self.findings.append(Finding(self._line(node), top, message, blocking=False))

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        module = _dotted(original_node.module)
        level = len(original_node.relative)
        names = original_node.names
        listed = () if isinstance(names, cst.ImportStar) else tuple(_dotted(a.name) for a in names)
        self.imports.append((level, module, listed))
        top = module.split(".")[0]
        if level == 0 and top in FLYTEKIT_DEPENDENCIES and top not in self.noted:
            self._note_dependency(original_node, top)
        if level or not flytekit_module(module):
            return updated_node
        if isinstance(names, cst.ImportStar):
            self._unported(original_node, module, "*")
            return updated_node
        kept: list[cst.ImportAlias] = []
        for alias in names:
            name = _dotted(alias.name)
            local = _dotted(alias.asname.name) if alias.asname is not None else name
            target = NAMES.get((module, name))
            if target is not None:
                self._add(target, local, f"{module}.{name}")
            elif f"{module}.{name}" in MODULES:
                self._add(tuple(MODULES[f"{module}.{name}"].rsplit(".", 1)), local)  # type: ignore[arg-type]
            elif any(m.startswith(f"{module}.{name}") for m, _ in NAMES):
                self.aliases[local] = f"{module}.{name}"  # a module used as a namespace: ported by reference
                self.module_imports.append((module, name, None if local == name else local))
                kept.append(alias)
            else:
                self._unported(original_node, module, name)
                kept.append(alias)
        if not kept:
            return cst.RemoveFromParent()
        if len(kept) < len(names):
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            return updated_node.with_changes(names=kept)
        return updated_node

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression:
        inner: cst.BaseExpression = updated_node  # updated: an inner reference already ported leaves no alias
        while isinstance(inner, cst.Attribute):
            inner = inner.value
        if not isinstance(inner, cst.Name):  # e.g. flytekit.current_context().secrets: its inner part is ported
            return updated_node
        dotted = _dotted(updated_node)
        head, _, rest = dotted.partition(".")
        if head in self.partial and rest:
            flytekit_name, has = self.partial[head]
            attribute = rest.split(".")[0]
            if attribute not in has:
                self.findings.append(
                    Finding(self._line(original_node), f"{flytekit_name}.{attribute}", "no flyteconnect equivalent")
                )
            return updated_node
        if head not in self.aliases or not rest:
            return updated_node
        full = f"{self.aliases[head]}.{rest}"
        module, _, name = full.rpartition(".")
        target = NAMES.get((module, name))
        if target is not None:
            self._add(target, target[1], full)
            return cst.Name(target[1])
        if full in MODULES:
            new_module, _, attr = MODULES[full].rpartition(".")
            AddImportsVisitor.add_needed_import(self.context, new_module, attr)
            return cst.Name(attr)
        if any(m == full or m.startswith(full + ".") for m, _ in NAMES):
            return updated_node  # a package on the way to a ported name: the enclosing attribute decides
        self._unported(original_node, module, name)
        return updated_node

    def leave_Await(self, original_node: cst.Await, updated_node: cst.Await) -> cst.BaseExpression:
        # flytekit's Resource.to_flyte_idl is a coroutine; flyteconnect's returns the proto (and no other
        # to_flyte_idl in flytekit is awaitable), so `await x.to_flyte_idl()` becomes the plain call.
        call = updated_node.expression
        if (
            isinstance(call, cst.Call)
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value == "to_flyte_idl"
            and not call.args
        ):
            return call.with_changes(lpar=updated_node.lpar, rpar=updated_node.rpar)
        return updated_node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        for module, name, asname in self.module_imports:
            RemoveImportsVisitor.remove_unused_import(self.context, module, name, asname)
        return updated_node

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        return tree.visit(self)


def rewrite_source(source: str) -> Rewrite:
    """Port one module's source text (libcst.ParserSyntaxError if it is not valid Python)."""
    module = cst.parse_module(source)
    port = _Port(CodemodContext())
    out: Any = port.transform_module(module)
    return Rewrite(out.code, sorted(port.findings, key=lambda f: f.line), port.imports)
