"""cxlab._html: every page's templates are autoescaped (README "Pages run nothing from the data").

The pages' own tests plant markup in the data and look for it escaped; this module checks the
rule they rely on at its source: every Jinja environment cxlab builds escapes, whatever a
template's file name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jinja2
from markupsafe import escape

import cxlab
from cxlab._html import CSP, html_environment

SRC = Path(cxlab.__file__).parent


def _environment_calls() -> list[tuple[str, ast.Call]]:
    """Every ``Environment(...)`` / ``jinja2.Environment(...)`` call in cxlab's source."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "Environment" not in text:  # parse only the modules that could build one
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("Environment", "SandboxedEnvironment"):
                    out.append((path.relative_to(SRC).as_posix(), node))
    return out


def test_every_jinja_environment_in_cxlab_autoescapes_every_template():
    calls = _environment_calls()
    assert any(where == "_html.py" for where, _ in calls)  # the scan sees the one door
    for where, call in calls:
        kw = {k.arg: k.value for k in call.keywords}
        assert "autoescape" in kw, f"{where}:{call.lineno}: Environment without autoescape"
        value = kw["autoescape"]
        assert isinstance(value, ast.Constant) and value.value is True, (
            f"{where}:{call.lineno}: autoescape must be True for every template, "
            "not select_autoescape (it leaves report.html.j2 unescaped)"
        )


def test_html_environment_escapes_a_j2_template_and_carries_the_csp():
    loader = jinja2.DictLoader({"page.html.j2": "{{ csp_meta }}<p>{{ text }}</p>"})
    html = html_environment(loader).get_template("page.html.j2").render(text="<script>x</script>")
    assert "<p>&lt;script&gt;x&lt;/script&gt;</p>" in html
    assert f'content="{escape(CSP)}"' in html and CSP.startswith("default-src 'none'")
