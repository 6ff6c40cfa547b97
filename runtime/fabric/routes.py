"""A color's route on one PE, read from its configuration struct, and the rules cslc applies to
color configurations (a routable color, one configuration per PE and color). The layout's
@set_color_config and a PE program's @set_local_color_config both go through here."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from kernelc.csl import machine
from kernelc.diagnostics import Span
from kernelc.runtime.fabric.values import Color, Direction, FabricError, Struct


@dataclass(frozen=True)
class Route:
    """A color's routes on one PE: the directions it accepts, those it forwards to, and
    the color swap, range filter and switch positions that change them."""

    rx: frozenset[str]
    tx: tuple[str, ...]
    swap: frozenset[str] = frozenset()  # color swap: arriving from these, color ID ^= 1
    keep: tuple[int, int] | None = None  # range filter: the wavelet indices the CE receives
    # switches: (rx, tx) of positions 0..n (0: the routes above), the start, ring mode
    positions: tuple[tuple[frozenset[str], tuple[str, ...]], ...] | None = None
    start: int = 0
    ring: bool = False


def read_route(cfg: object, where: str, arch: machine.Arch) -> Route:
    """A color config struct (``.routes``, ``.switches``, ``.filter``) as the Route it sets,
    checked against what the simulator models; ``where`` names the PE and color in errors."""
    if not isinstance(cfg, Struct) or not isinstance(cfg.get("routes"), Struct):
        raise FabricError(f"{where}: a color config needs .routes = .{{ .rx = ..., .tx = ... }}")
    routes = cfg.get("routes")
    rx, tx = routes.get("rx"), routes.get("tx")
    for part in (rx, tx):
        if not isinstance(part, Struct) or not all(isinstance(d, Direction) for d in part.items):
            raise FabricError(f"{where}: .rx and .tx list directions (RAMP, NORTH, ...)")
    swap_x, swap_y = routes.get("color_swap_x", False), routes.get("color_swap_y", False)
    for name, flag in (("color_swap_x", swap_x), ("color_swap_y", swap_y)):
        if not isinstance(flag, bool | np.bool_):
            raise FabricError(f"{where}: .{name} is a bool")
        if flag and arch.name != "wse2":
            raise FabricError(f"{where}: .{name}: color swap is a WSE-2 feature")
    switches = _switches(cfg, rx.items, tx.items, where)
    return _route_of(rx.items, tx.items, bool(swap_x), bool(swap_y), _filter(cfg, where), switches)


def _switches(cfg: Struct, rx: tuple, tx: tuple, where: str) -> tuple | None:
    """A color's switch positions: each of ``.pos1`` .. ``.pos3`` replaces the routes' ``.rx``
    or ``.tx`` with one direction; control wavelets move between them at run time."""
    spec = cfg.get("switches")
    if spec is None:
        return None
    if not isinstance(spec, Struct):
        raise FabricError(f"{where}: .switches is a struct")
    known = {"pos1", "pos2", "pos3", "current_switch_pos", "ring_mode"}
    for name in spec.fields:
        if name not in known:
            raise FabricError(f"{where}: switch setting .{name} is not modelled")
    positions = [(frozenset(d.name for d in rx), tuple(d.name for d in tx))]
    for k in (1, 2, 3):
        pos = spec.get(f"pos{k}")
        if pos is None:
            break
        given = {n: v for n, v in pos.fields.items()} if isinstance(pos, Struct) else {}
        if (
            not given
            or set(given) - {"rx", "tx"}
            or not all(isinstance(v, Direction) for v in given.values())
        ):
            raise FabricError(f"{where}: .pos{k} sets .rx and/or .tx to one direction")
        base_rx, base_tx = positions[0]
        positions.append(
            (
                frozenset({given["rx"].name}) if "rx" in given else base_rx,
                (given["tx"].name,) if "tx" in given else base_tx,
            )
        )
    start = int(spec.get("current_switch_pos", 0))
    if not 0 <= start < len(positions):
        raise FabricError(f"{where}: .current_switch_pos {start} is not a configured position")
    return (tuple(positions), start, bool(spec.get("ring_mode", False)))


def _filter(cfg: Struct, where: str) -> tuple[int, int] | None:
    """A color's range filter: the CE takes only the wavelets whose upper 16 bits (their
    index) lie in ``min_idx..max_idx``; the router forwards every wavelet as routed."""
    spec = cfg.get("filter")
    if spec is None:
        return None
    kind = spec.get("kind") if isinstance(spec, Struct) else None
    if not isinstance(kind, Struct) or list(kind.fields) != ["range"]:
        raise FabricError(
            f"{where}: only range filters (.kind = .{{ .range = true }}) are modelled"
        )
    lo, hi = spec.get("min_idx"), spec.get("max_idx")
    if lo is None or hi is None:
        raise FabricError(f"{where}: a range filter needs .min_idx and .max_idx")
    if not 0 <= int(lo) <= int(hi) <= 0xFFFF:
        raise FabricError(f"{where}: filter range {int(lo)}..{int(hi)} is not within 0..65535")
    return (int(lo), int(hi))


@functools.lru_cache(maxsize=256)  # a grid's routes: a few direction lists, set on every PE
def _route_of(
    rx: tuple[Direction, ...],
    tx: tuple[Direction, ...],
    swap_x: bool,
    swap_y: bool,
    keep: tuple[int, int] | None,
    switches: tuple | None,
) -> Route:
    swap = ({"WEST", "EAST"} if swap_x else set()) | ({"NORTH", "SOUTH"} if swap_y else set())
    positions, start, ring = switches if switches is not None else (None, 0, False)
    rx_names, tx_names = frozenset(d.name for d in rx), tuple(d.name for d in tx)
    return Route(rx_names, tx_names, frozenset(swap), keep, positions, start, ring)


def duplicate_config(where: str, color: int, first: Span | None, ctx) -> FabricError:
    """cslc rejects a second configuration of one color on one PE (no silent overwrite)."""
    err = FabricError(
        f"{where}: color {color} is configured a second time (cslc accepts one "
        "@set_color_config / @set_local_color_config per PE and color)",
        ctx.file,
        ctx.at,
    )
    if first is not None:
        err.notes.append((first, "the first configuration of that color"))
    return err


def check_color(color: object, arch: machine.Arch, where: str) -> None:
    """A color a program configures or reserves: routable on ``arch``, not memcpy's."""
    if not isinstance(color, Color):
        raise FabricError(f"{where}: expected a color, got {color!r}")
    if not 0 <= color.id < arch.routable_colors:
        raise FabricError(f"{where}: color {color.id} is not routable (0..23)")
    if color.id in arch.reserved_ids:
        raise FabricError(f"{where}: color {color.id} is reserved by memcpy")
