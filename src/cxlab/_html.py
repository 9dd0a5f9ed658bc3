"""The one way cxlab builds HTML: an autoescaping Jinja environment, a Content-Security-Policy
and the single door through which code-made SVG enters a page unescaped.

Every page (the experiment report, the screen profiles, any later page) gets its
environment from :func:`html_environment`, so autoescaping is on for every template
whatever its file name (``select_autoescape()`` matches ``.html`` but not
``report.html.j2``). Text from data -- spec titles, outcome labels, arm and session
names, marker labels, quarantine reasons -- is therefore escaped unless the code wraps
it in :class:`markupsafe.Markup`, which only :func:`svg_markup` and the table builders
do, after escaping every cell themselves.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import jinja2
from markupsafe import Markup

__all__ = ["CSP", "csp_meta", "html_environment", "svg_markup"]

#: What a cxlab page may load: nothing but its own inline styles and inline (data:) images.
#: No script runs, no font, style sheet, frame or form target is fetched from anywhere.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)


def csp_meta() -> Markup:
    """The ``<meta http-equiv="Content-Security-Policy">`` tag every page carries in its head."""
    return Markup('<meta http-equiv="Content-Security-Policy" content="{}">').format(CSP)


def html_environment(
    loader: jinja2.BaseLoader | None = None, /, *, strict: bool = False
) -> jinja2.Environment:
    """A Jinja environment with autoescaping on for every template and ``csp_meta`` global.

    Parameters
    ----------
    loader : jinja2.BaseLoader, optional
        Where templates come from (``None`` for ``env.from_string``).
    strict : bool
        Raise on an undefined template variable (``jinja2.StrictUndefined``).
    """
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
    )
    env.globals["csp_meta"] = csp_meta()
    return env


_SVG_NS = "{http://www.w3.org/2000/svg}"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_BANNED = {"script", "foreignObject", "iframe", "object", "embed", "handler", "listener"}


def svg_markup(svg: str, /) -> Markup:
    """Mark an SVG the code itself drew as safe to inline, after proving it is inert.

    The text is parsed as XML; it must be one ``<svg>`` element with no script-capable
    element (``script``, ``foreignObject``, ...), no ``on*`` event attribute and no
    link other than a same-document ``#fragment`` or ``data:image/`` URI. A label from
    the data that was not escaped by the plotting library (``<script>`` in an arm name)
    either breaks the XML or shows up as an element, and is refused here.

    Raises
    ------
    ValueError
        If the SVG is not well-formed or carries active content (a bug in the figure
        code, never a user error: figures must escape the text they embed).
    """
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as e:
        raise ValueError(f"figure SVG is not well-formed XML ({e}); refusing to inline it") from e
    if root.tag != _SVG_NS + "svg":
        raise ValueError(f"figure root element is {root.tag!r}, not <svg>; refusing to inline it")
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag in _BANNED:
            raise ValueError(f"figure SVG contains a <{tag}> element; refusing to inline it")
        for k, v in el.attrib.items():
            name = k.rsplit("}", 1)[-1].lower()
            if name.startswith("on"):
                raise ValueError(f"figure SVG has an event attribute {name!r}; refusing it")
            if (name == "href" or k == _XLINK_HREF) and not v.startswith(("#", "data:image/")):
                raise ValueError(f"figure SVG links to {v!r}; only #fragments are allowed")
    return Markup(svg)
