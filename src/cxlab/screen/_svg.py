"""Small inline SVG charts for the athlete pages (no matplotlib: fast, crisp on phones).

Every text placed in a chart is escaped here (``markupsafe.escape``); the returned
``Markup`` is safe to insert into an autoescaped Jinja template.
"""

from __future__ import annotations

import numpy as np
from markupsafe import Markup, escape

W, H = 360, 190
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 44, 32, 18, 38


def _ticks(lo: float, hi: float, n: int = 4) -> np.ndarray:
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.array([lo])
    step = 10 ** np.floor(np.log10((hi - lo) / n))
    for m in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (m * step) <= n:
            step *= m
            break
    return np.arange(np.ceil(lo / step) * step, hi + 0.5 * step, step)


class _Frame:
    def __init__(self, x0, x1, y0, y1):
        pad_y = 0.08 * (y1 - y0) if y1 > y0 else max(abs(y0) * 0.05, 1e-9)
        pad_x = 0.05 * (x1 - x0) if x1 > x0 else 0.5
        self.x0, self.x1 = x0 - pad_x, x1 + pad_x
        self.y0, self.y1 = y0 - pad_y, y1 + pad_y

    def x(self, v):
        return _PAD_L + (np.asarray(v, float) - self.x0) / (self.x1 - self.x0) * (
            W - _PAD_L - _PAD_R
        )

    def y(self, v):
        return (
            H
            - _PAD_B
            - (np.asarray(v, float) - self.y0) / (self.y1 - self.y0) * (H - _PAD_T - _PAD_B)
        )


def _num(t: float) -> str:
    """Compact tick text: no exponent below 1e6, no negative zero."""
    t = float(t) + 0.0
    return f"{t:.0f}" if 1000 <= abs(t) < 1e6 else f"{t:.3g}"


def _yaxis(fr: _Frame, unit: str) -> list[str]:
    out = [f'<line x1="{_PAD_L}" y1="{_PAD_T}" x2="{_PAD_L}" y2="{H - _PAD_B}" stroke="#888"/>']
    for t in _ticks(fr.y0, fr.y1):
        y = fr.y(t)
        out.append(
            f'<text x="{_PAD_L - 4}" y="{y + 3:.1f}" text-anchor="end" '
            f'font-size="9">{escape(_num(t))}</text>'
            f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{W - _PAD_R}" y2="{y:.1f}" '
            'stroke="#eee"/>'
        )
    if unit:
        out.append(
            f'<text x="{W - _PAD_R}" y="{_PAD_T - 1}" font-size="9" fill="#555" '
            f'text-anchor="end">{escape(unit)}</text>'
        )
    return out


def trend_svg(
    x, labels, values, /, *, te: float, swc: float, unit: str, spans=(), title: str = ""
) -> Markup:
    """Values over time with ± typical-error bars, a baseline ± SWC band and shaded spans.

    Parameters
    ----------
    x : array_like, shape (n,)
        Positions (days since the first date, or session order).
    labels : sequence of str, length n
        Tick labels under each point.
    values : array_like, shape (n,)
    te, swc : float
        Typical error and smallest worthwhile change (NaN = not drawn), unit of ``values``.
    unit : str
    spans : sequence of (start, stop)
        Programme periods in ``x`` units, shaded green.
    title : str
        Accessible name of the chart.
    """
    x, v = np.asarray(x, float), np.asarray(values, float)
    e = te if np.isfinite(te) else 0.0
    lo = np.nanmin(np.concatenate([v - e, [v[0] - swc] if np.isfinite(swc) else []]))
    hi = np.nanmax(np.concatenate([v + e, [v[0] + swc] if np.isfinite(swc) else []]))
    fr = _Frame(float(x.min()), float(x.max()), float(lo), float(hi))
    parts = [
        f'<svg viewBox="0 0 {W} {H}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for a, b in spans:
        xa, xb = np.clip(fr.x([a, b]), _PAD_L, W - _PAD_R)
        if xb > xa:
            parts.append(
                f'<rect x="{xa:.1f}" y="{_PAD_T}" width="{xb - xa:.1f}" '
                f'height="{H - _PAD_T - _PAD_B}" fill="#55A868" opacity="0.12"/>'
            )
    if np.isfinite(swc):
        ya, yb = fr.y(v[0] + swc), fr.y(v[0] - swc)
        parts.append(
            f'<rect x="{_PAD_L}" y="{ya:.1f}" width="{W - _PAD_L - _PAD_R}" '
            f'height="{yb - ya:.1f}" fill="#999" opacity="0.25"/>'
        )
    parts += _yaxis(fr, "")
    px, py = fr.x(x), fr.y(v)
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#222" stroke-width="1.2"/>')
    for a, b, val, lab in zip(px, py, v, labels, strict=True):
        if e:
            parts.append(
                f'<line x1="{a:.1f}" y1="{fr.y(val + e):.1f}" x2="{a:.1f}" '
                f'y2="{fr.y(val - e):.1f}" stroke="#C44E52" stroke-width="1.2"/>'
            )
        parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.2" fill="#222"/>')
        for k, line in enumerate(str(lab).split("\n")):
            parts.append(
                f'<text x="{a:.1f}" y="{H - _PAD_B + 12 + 10 * k}" font-size="9" '
                f'text-anchor="middle">{escape(line)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def curves_svg(curves, /, *, title: str, xlabel: str) -> Markup:
    """Force–time curves: ``curves`` = list of (label, t, y, colour, dashed)."""
    t_all = np.concatenate([c[1] for c in curves])
    y_all = np.concatenate([c[2] for c in curves])
    fr = _Frame(
        float(t_all.min()), float(t_all.max()), float(np.nanmin(y_all)), float(np.nanmax(y_all))
    )
    parts = [
        f'<svg viewBox="0 0 {W} {H + 30}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    parts += _yaxis(fr, "force / body weight")
    for t in _ticks(fr.x0, fr.x1):
        parts.append(
            f'<text x="{fr.x(t):.1f}" y="{H - _PAD_B + 12}" font-size="9" '
            f'text-anchor="middle">{escape(_num(t))}</text>'
        )
    parts.append(
        f'<text x="{W / 2}" y="{H - _PAD_B + 26}" font-size="9" '
        f'text-anchor="middle">{escape(xlabel)}</text>'
    )
    for k, (label, t, y, colour, dashed) in enumerate(curves):
        step = max(1, len(t) // 600)
        pts = " ".join(
            f"{a:.1f},{b:.1f}" for a, b in zip(fr.x(t[::step]), fr.y(y[::step]), strict=True)
        )
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.3"{dash}/>'
        )
        lx = _PAD_L + 4 + (k % 2) * 150
        ly = H + 4 + (k // 2) * 12
        parts.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 16}" y2="{ly}" stroke="{colour}" '
            f'stroke-width="2"{dash}/><text x="{lx + 20}" y="{ly + 3}" '
            f'font-size="9">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
