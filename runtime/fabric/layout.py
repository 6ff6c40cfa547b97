"""The layout file's evaluation: the program rectangle, each PE's tile code and params, the
routes the layout sets per PE and color, and the names it exports to the host."""

from __future__ import annotations

import posixpath

from kernelc import progress
from kernelc.csl import machine
from kernelc.csl import model as m
from kernelc.diagnostics import Span
from kernelc.runtime.fabric import libraries as lib
from kernelc.runtime.fabric.evaluate import Compiler, ModuleScope, UserModule, run_module
from kernelc.runtime.fabric.routes import Route, check_color, duplicate_config, read_route
from kernelc.runtime.fabric.values import FabricError, Struct


class LayoutContext:
    """Evaluates the layout file: rectangle, tile code, routes and exported names."""

    def __init__(
        self,
        file: str,
        arch: machine.Arch,
        shown: progress.Phase | progress.Silent,
        modules: dict[str, list] | None = None,
    ) -> None:
        self.file, self.arch, self.shown = file, arch, shown
        self.modules = modules or {}  # the program's files, compiled, for @import_module
        self.g: dict[str, object] = {}
        self.gt: dict[str, object] = {}
        self.now = 0
        self.rectangle: tuple[int, int] | None = None
        self.tiles: dict[tuple[int, int], tuple[str, Struct]] = {}
        self.routes: dict[tuple[int, int, int], Route] = {}
        self.exports: dict[str, tuple[object, bool]] = {}
        self.route_at: dict[tuple[int, int, int], Span | None] = {}
        self.at: Span | None = None  # the builtin call being evaluated
        self.memcpy: lib.MemcpyParams | None = None  # its streaming colors reach every PE

    def declared(self, name: str, value: object, const: bool) -> None:
        return None

    def module_declared(self, file: str, name: str, value: object, const: bool) -> None:
        return None  # the layout's values take no PE memory

    def import_module(self, path: str, cfg: object, base: str) -> object:
        """A layout module: a program file, named relative to the importing file, or a
        library."""
        if path.startswith("<"):
            return self.builtin("import_module", (path, cfg) if cfg is not None else (path,))
        name = posixpath.normpath(posixpath.join(posixpath.dirname(base), path))
        actions = self.modules.get(name)
        if actions is None:
            raise FabricError(f'@import_module("{path}"): no program file {name}', base)
        if cfg is not None and not isinstance(cfg, Struct):
            raise FabricError(f'@import_module("{path}", ...) takes a struct of params', base)
        scope = ModuleScope(self, name)
        run_module(actions, scope, dict(cfg.fields) if cfg is not None else {})
        return UserModule(scope)

    def _inside(self, x: int, y: int, what: str) -> None:
        if self.rectangle is None:
            raise FabricError(f"{what} before @set_rectangle", self.file)
        w, h = self.rectangle
        if not (0 <= x < w and 0 <= y < h):
            raise FabricError(
                f"{what}: PE ({x}, {y}) is outside the {w} x {h} rectangle", self.file
            )

    def builtin(self, name: str, args: tuple) -> object:
        if name == "set_rectangle":
            w, h = int(args[0]), int(args[1])
            mw, mh = self.arch.max_program
            if not (1 <= w <= mw and 1 <= h <= mh):
                raise FabricError(f"rectangle {w} x {h} does not fit {mw} x {mh}", self.file)
            self.rectangle = (w, h)
            return None
        if name == "set_tile_code":
            x, y, path = int(args[0]), int(args[1]), args[2]
            params = args[3] if len(args) > 3 else Struct()
            self._inside(x, y, "@set_tile_code")
            self.tiles[(x, y)] = (str(path), params)
            self.shown.update(self._coded)
            return None
        if name == "set_color_config":
            x, y, color, cfg = int(args[0]), int(args[1]), args[2], args[3]
            self._inside(x, y, "@set_color_config")
            check_color(color, self.arch, f"{self.file}: PE ({x}, {y})")
            key = (x, y, color.id)
            if key in self.routes:
                raise duplicate_config(f"PE ({x}, {y})", color.id, self.route_at[key], self)
            self.routes[key] = read_route(cfg, f"PE ({x}, {y}) color {color.id}", self.arch)
            self.route_at[key] = self.at
            return None
        if name == "export_name":
            self.exports[str(args[0])] = (args[1], bool(args[2]) if len(args) > 2 else False)
            return None
        if name == "import_module":
            path = str(args[0])
            if not path.startswith("<"):
                return self.import_module(path, args[1] if len(args) > 1 else None, self.file)
            if self.rectangle is None and path in lib.LAYOUT_MODULES:
                return _Deferred(path, args[1] if len(args) > 1 else Struct(), self)
            return self._module(path, args[1] if len(args) > 1 else Struct())
        if name == "is_arch":
            return str(args[0]) == self.arch.name
        if name == "get_rectangle":
            return self._rect()
        raise FabricError(f"@{name} is not available in a layout", self.file)

    def _coded(self) -> str:
        w, h = self.rectangle
        return f"{len(self.tiles):,} of {w * h:,} PEs given their code"

    def _rect(self) -> Struct:
        if self.rectangle is None:
            raise FabricError("@get_rectangle before @set_rectangle", self.file)
        return Struct({"width": self.rectangle[0], "height": self.rectangle[1]})

    def _module(self, path: str, cfg: Struct) -> object:
        if self.rectangle is None:
            raise FabricError(f"{path} needs the rectangle", self.file)
        w, h = self.rectangle
        if path == "<memcpy/get_params>":
            self.memcpy = lib.MemcpyParams(cfg, w, h)
            return self.memcpy
        if path == "<collectives_2d/params>":
            return lib.C2dParams(w, h)
        raise FabricError(f"the simulator has no model of module {path} (layout)", self.file)


class _Deferred:
    """A layout module imported at module scope, resolved once the rectangle is known."""

    def __init__(self, path: str, cfg: Struct, ctx: LayoutContext) -> None:
        self.path, self.cfg, self.ctx = path, cfg, ctx
        self.resolved: object = None

    def csl_member(self, name: str) -> object:
        if self.resolved is None:
            self.resolved = self.ctx._module(self.path, self.cfg)
        return self.resolved.csl_member(name)


def evaluate_layout(
    layout: m.CslFile,
    params: dict[str, int],
    arch: machine.Arch,
    modules: dict[str, list] | None = None,
) -> LayoutContext:
    """The layout run with the host's params, checked to have set the rectangle."""
    with progress.phase(f"fabric simulator, evaluating {layout.name}") as shown:
        ctx = LayoutContext(layout.name, arch, shown, modules)
        run_module(Compiler(layout.name).module(layout), ctx, dict(params))
    if ctx.rectangle is None:
        raise FabricError("the layout never calls @set_rectangle", layout.name)
    return ctx
