"""A tiny SVG writer on ElementTree: elements with escaped text and attributes, numbers
written the same way every time (so the same report is the same bytes), and the colours
every picture shares (a palette per task, a heat ramp for memory).

ElementTree escapes text and attribute values, which is all an inline SVG needs; a drawing
library would add a dependency for less than this file does.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from xml.etree import ElementTree as ET

NS = "http://www.w3.org/2000/svg"

# qualitative colours that stay apart for readers with colour-vision deficiencies (Okabe-Ito and
# Tol's muted scheme), then golden-angle hues for graphs with more tasks
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#882255",
    "#44aa99",
    "#999933",
    "#aa4499",
)
EMPTY = "#eef0f2"  # a cell no task uses
HEAT = ((0.0, (255, 247, 236)), (0.5, (252, 141, 89)), (1.0, (127, 0, 0)))  # OrRd, 0 .. limit


def task_colour(index: int) -> str:
    """The colour of the index-th task of a graph (deterministic)."""
    if index < len(PALETTE):
        return PALETTE[index]
    hue = (index * 0.381966) % 1.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.45, 0.6)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def heat(fraction: float) -> str:
    """A colour for memory use as a fraction of the limit (0 light, 1 dark red)."""
    f = min(max(fraction, 0.0), 1.0)
    for (a, ca), (b, cb) in zip(HEAT, HEAT[1:], strict=False):
        if f <= b:
            t = (f - a) / (b - a)
            r, g, bl = (round(x + (y - x) * t) for x, y in zip(ca, cb, strict=True))
            return f"#{r:02x}{g:02x}{bl:02x}"
    return "#7f0000"


def num(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def svg(width: float, height: float, label: str, cls: str) -> ET.Element:
    """An inline SVG root with an accessible label."""
    root = ET.Element(
        "svg",
        {
            "xmlns": NS,
            "class": cls,
            "width": num(width),
            "height": num(height),
            "viewBox": f"0 0 {num(width)} {num(height)}",
            "role": "img",
            "aria-label": label,
        },
    )
    return root


def element(
    parent: ET.Element, tag: str, tooltip: str | None = None, **attrs: object
) -> ET.Element:
    """A child element; keyword ``class_`` is ``class``, ``data_x`` is ``data-x``; floats are
    written by ``num``; ``tooltip`` becomes a <title> (what browsers show on hover)."""
    out = {}
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        out[name] = num(value) if isinstance(value, float) else str(value)
    node = ET.SubElement(parent, tag, out)
    if tooltip is not None:
        ET.SubElement(node, "title").text = tooltip
    return node


def text(parent: ET.Element, x: float, y: float, content: str, **attrs: object) -> ET.Element:
    node = element(parent, "text", x=float(x), y=float(y), **attrs)
    node.text = content
    return node


def arrow_marker(root: ET.Element, name: str, colour: str) -> None:
    defs = root.find("defs")
    if defs is None:
        defs = ET.SubElement(root, "defs")
    marker = element(
        defs,
        "marker",
        id=name,
        viewBox="0 0 10 10",
        refX="9",
        refY="5",
        markerWidth="7",
        markerHeight="7",
        orient="auto-start-reverse",
    )
    element(marker, "path", d="M 0 0 L 10 5 L 0 10 z", fill=colour)


def stripes(
    parent: ET.Element, x: float, y: float, w: float, h: float, colours: Sequence[str]
) -> None:
    """Vertical stripes of equal width, one per colour (a cell that several tasks use)."""
    step = w / len(colours)
    for k, colour in enumerate(colours):
        element(
            parent, "rect", x=x + k * step, y=float(y), width=step, height=float(h), fill=colour
        )


def tostring(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")
