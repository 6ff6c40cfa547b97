"""report.html: one self-contained static page (inline SVG and CSS, no script, no network)
that shows what the compiler did with a kernel, for deciding whether it is worth machine time.

The page is a pure function of the ``Report``: the same report gives the same bytes.
"""

from __future__ import annotations

from html import escape

from kernelc.report import svg
from kernelc.report.cycles import cycles_svg, phase_legend
from kernelc.report.data import Report, Simulated, View
from kernelc.report.graph import graph_svg
from kernelc.report.placement import heat_legend_svg, legend_svg, memory_svg, tasks_svg

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2937;
  margin: 0; background: #f8fafc; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 30px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #e5e7eb; }
h3 { font-size: 14px; margin: 16px 0 6px; color: #374151; }
.sub { color: #4b5563; margin: 0 0 12px; }
.kind { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px;
  background: #e0e7ff; color: #3730a3; vertical-align: middle; }
.kind.simulated { background: #e5e7eb; color: #111827; }
.banner { background: #fffbeb; border: 1px solid #fde68a; padding: 8px 12px; border-radius: 6px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 14px;
  min-width: 170px; }
.card .v { font-size: 20px; font-weight: 600; }
.card .l { color: #6b7280; font-size: 12px; }
table { border-collapse: collapse; background: #fff; margin: 6px 0 10px; }
th, td { border: 1px solid #e5e7eb; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.figure { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px;
  overflow-x: auto; margin: 6px 0 10px; }
.figure svg.graph { max-width: 100%; height: auto; }
.pair { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.note { color: #4b5563; font-size: 13px; }
ul.notes { margin: 4px 0; padding-left: 20px; color: #374151; }
code { font: 12.5px ui-monospace, Menlo, Consolas, monospace; }
svg text { font: 12px -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; fill: #111827; }
svg text.edge-label { font-size: 10px; fill: #6b7280; }
svg text.task-label { fill: #ffffff; font-weight: 600; }
svg text.axis-label, svg text.bar-value { font-size: 11px; fill: #4b5563; }
svg .cell:hover rect, svg rect.mem:hover { stroke: #111827; stroke-width: 1.5; }
"""


def render(report: Report) -> str:
    colours = {t.name: svg.task_colour(k) for k, t in enumerate(report.tasks)}
    view = report.view
    title = f"{report.entry} on {report.target}"
    params = ", ".join(f"{k} = {v}" for k, v in report.params) or "none"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>kernelc report: {escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body><main>",
        f"<h1>{escape(title)}{escape(' (' + view.arch + ')') if view else ''}</h1>",
        f'<p class="sub">from <code>{escape(report.source)}</code>, entry '
        f"<code>{escape(report.entry)}</code>; sizes and parameters: {escape(params)}; "
        f"kernelc {escape(report.kernelc)}</p>",
        '<p class="banner">Cycle counts here are <b>modelled</b> (kernelc\'s cost model for the '
        "target) or <b>simulated</b> (kernelc's simulator of the target, after "
        "<code>kernelc run --report</code>). None is a measurement on hardware.</p>",
        _cards(report),
    ]
    if view is not None:
        parts += _plan(view)
    parts += [
        "<h2>Task graph</h2>",
        f'<p class="note">{len(report.tasks)} task(s) in {len(report.steps)} step(s) over '
        f"{len(report.tensors)} tensor(s). Arrows are reads (grey) and writes (in the task's "
        "colour); hover for the region. Dashed blue arrows are order and anti dependences.</p>",
        f'<div class="figure">{svg.tostring(graph_svg(report.tensors, report.tasks, report.dependencies, colours))}</div>',  # noqa: E501
    ]
    if view is not None and view.placement is not None:
        parts += _placement(report, view, colours)
    if view is not None and view.cycles:
        parts += _cycles(view, report.simulated)
    elif report.simulated is not None:
        parts += _cycles_without_model(report.simulated)
    parts += _tables(report)
    if view is not None and view.notes:
        parts += ["<h2>Notes</h2>", '<ul class="notes">']
        parts += [f"<li>{escape(n)}</li>" for n in view.notes]
        parts.append("</ul>")
    parts += [
        "<h2>Files</h2>",
        '<p class="note">' + ", ".join(f"<code>{escape(f)}</code>" for f in report.files) + "</p>",
        "</main></body></html>",
        "",
    ]
    return "\n".join(parts)


def _kind(kind: str) -> str:
    return f'<span class="kind {kind}">{kind}</span>'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><div class="v">{value}</div><div class="l">{label}</div></div>'


def _cards(report: Report) -> str:
    view = report.view
    cards = [_card(str(len(report.tasks)), "tasks")]
    if view is not None and view.total_cycles is not None:
        text = f"{view.total_cycles:,}"
        label = f"cycles {_kind('modelled')}"
        if view.clock_hz:
            label += f" = {view.total_cycles / view.clock_hz * 1e6:,.2f} µs at "
            label += f"{view.clock_hz / 1e6:,.0f} MHz"
        cards.append(_card(text, label))
    if report.simulated is not None:
        sim = report.simulated
        label = f"cycles {_kind('simulated')}"
        if view is not None and view.total_cycles:
            label += f", {sim.total / view.total_cycles:.2f} × modelled"
        for name, cycles in sim.totals:
            if name in sim.unmodelled:
                label += f"; {escape(name)} {cycles:,} more (not modelled)"
        cards.append(_card(f"{sim.total:,}", label))
    if view is not None and view.placement is not None:
        p = view.placement
        used = [c for c in p.cells if c.memory_bytes]
        if used:
            most = max(c.memory_bytes or 0 for c in used)
            cards.append(
                _card(
                    f"{100 * most / p.limit_bytes:.1f} %",
                    f"memory of the fullest {escape(p.unit)}: {most:,} of {p.limit_bytes:,} B "
                    f"{_kind('modelled')}",
                )
            )
        busy = sum(c.count for c in p.cells if c.tasks and c.memory_bytes is not None)
        cards.append(_card(f"{busy:,} of {p.processors:,}", f"{escape(p.unit)}s with tasks"))
    return '<div class="cards">' + "".join(cards) + "</div>"


def _plan(view: View) -> list[str]:
    out = ["<h2>Plan</h2>", f'<p class="note">{escape(view.policy)}</p>']
    if view.chosen is None:
        return out
    out.append(
        "<table><tr><th></th><th>plan</th><th>cycles " + _kind("modelled") + "</th>"
        f"<th>memory per {escape(view.placement.unit if view.placement else 'processor')} "
        + _kind("modelled")
        + "</th></tr>"
    )
    for label, plan in (("chosen", view.chosen), ("runner-up", view.runner_up)):
        if plan is None:
            out.append(
                f"<tr><td>{label}</td><td colspan=3>none: no other plan was weighed</td></tr>"
            )
            continue
        out.append(
            f"<tr><td>{label}</td><td>{escape(plan.summary)}</td><td class=n>{plan.cycles:,}</td>"
            + (
                f"<td class=n>{plan.memory_bytes:,} B</td></tr>"
                if plan.memory_bytes is not None
                else "<td>not modelled per plan</td></tr>"
            )
        )
    out.append("</table>")
    return out


def _placement(report: Report, view: View, colours: dict[str, str]) -> list[str]:
    p = view.placement
    assert p is not None
    names = [t.name for t in report.tasks]
    what = p.note[:1].upper() + p.note[1:] if p.note else f"Each cell is a {p.unit}"
    return [
        f"<h2>Placement: {escape(p.title)}</h2>",
        f'<p class="note">{escape(what)}. Hover a cell for its tasks and memory.</p>',
        f'<div class="figure">{svg.tostring(legend_svg(names, colours))}',
        f'<div class="{"pair" if p.rows > 1 else "stack"}"><div>',
        f"<h3>Tasks on each {escape(p.unit)}</h3>{svg.tostring(tasks_svg(p, colours))}",
        "</div><div>",
        f"<h3>Memory of each {escape(p.unit)} against its {p.limit_bytes:,} bytes "
        f"{_kind('modelled')}</h3>",
        svg.tostring(memory_svg(p)),
        "<br>" + svg.tostring(heat_legend_svg(p.limit_bytes, p.unit)),
        "</div></div></div>",
    ]


def _cycles(view: View, sim: Simulated | None) -> list[str]:
    legend = " ".join(
        f'<span style="display:inline-block;width:10px;height:10px;background:{c}"></span> '
        f"{escape(name)}"
        for name, c in phase_legend(view)
    )
    if sim is not None:
        legend += f' <span style="display:inline-block;width:10px;height:10px;background:#374151"></span> simulated ({escape(sim.simulator)})'  # noqa: E501
    out = [
        "<h2>Cycles per piece and phase</h2>",
        f'<p class="note">Phases: {legend}</p>',
        f'<div class="figure">{svg.tostring(cycles_svg(view, sim))}</div>',
    ]
    per_piece = {c.name: c for c in sim.cycles} if sim is not None else {}
    head = "<tr><th>piece</th><th>tasks</th><th>phases " + _kind("modelled") + "</th>"
    head += "<th>cycles " + _kind("modelled") + "</th>"
    if sim is not None:
        head += "<th>cycles " + _kind("simulated") + "</th><th>simulated / modelled</th>"
    out += ["<table>", head + "</tr>"]
    for c in view.cycles:
        phases = ", ".join(f"{name} {n:,}" for name, n in c.phases)
        if c.repeat > 1:
            phases += f" (per batch, × {c.repeat:,})"
        row = (
            f"<tr><td><code>{escape(c.name)}</code></td><td>{escape(', '.join(c.tasks))}</td>"
            f"<td>{escape(phases)}</td><td class=n>{c.total:,}</td>"
        )
        if sim is not None:
            s = per_piece.get(c.name)
            row += (
                f"<td class=n>{s.total:,}</td><td class=n>{s.total / c.total:.3f}</td>"
                if s is not None and c.total
                else "<td>not available</td><td></td>"
            )
        out.append(row + "</tr>")
    if view.total_cycles is not None:
        row = f"<tr><th colspan=3>whole program</th><td class=n><b>{view.total_cycles:,}</b></td>"
        if sim is not None:
            totals = ", ".join(
                f"{k} {v:,}" + (" not modelled" if k in sim.unmodelled else "")
                for k, v in sim.totals
            )
            ratio = sim.total / view.total_cycles if view.total_cycles else 0
            row += f"<td class=n><b>{sim.total:,}</b><br>({escape(totals)})</td>"
            row += f"<td class=n>{ratio:.3f}</td>"
        out.append(row + "</tr>")
    out.append("</table>")
    if sim is not None and sim.note:
        out.append(f'<p class="note">{escape(sim.note)}.</p>')
    return out


def _cycles_without_model(sim: Simulated) -> list[str]:
    totals = ", ".join(f"{k} {v:,}" for k, v in sim.totals)
    return [
        "<h2>Cycles</h2>",
        f"<p>{_kind('simulated')} {escape(sim.simulator)}: {escape(totals)}</p>",
    ]


def _tables(report: Report) -> list[str]:
    out = [
        "<h2>Tasks</h2>",
        "<table><tr><th>task</th><th>kernel</th><th>step</th><th>reads</th><th>writes</th></tr>",
    ]
    for t in report.tasks:
        out.append(
            f"<tr><td>{escape(t.name)}</td><td>{escape(t.kernel)}</td><td class=n>{t.step}</td>"
            f"<td><code>{escape(', '.join(t.reads))}</code></td>"
            f"<td><code>{escape(', '.join(t.writes))}</code></td></tr>"
        )
    out += [
        "</table>",
        "<h2>Tensors</h2>",
        "<table><tr><th>tensor</th><th>role</th><th>type</th><th>bytes</th></tr>",
    ]
    for t in report.tensors:
        shape = "x".join(str(n) for n in t.shape)
        out.append(
            f"<tr><td>{escape(t.name)}</td><td>{escape(t.role)}</td>"
            f"<td><code>{escape(t.dtype)}[{escape(shape)}]</code></td>"
            f"<td class=n>{t.nbytes:,}</td></tr>"
        )
    out.append("</table>")
    return out
