"""Message templates in a Jinja2 sandbox.

Templates are written by marketers, not developers, so they render in a
:class:`~jinja2.sandbox.SandboxedEnvironment`: ``{{ ''.__class__.__mro__ }}``
and friends raise instead of reaching Python internals. HTML bodies are
autoescaped so a customer named ``<script>`` stays text.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from kizuna.errors import TemplateError

_TEXT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
_HTML = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Template:
    # Compiling costs more than rendering; a journey sends the same few
    # templates thousands of times.
    return (_HTML if html else _TEXT).from_string(source)


def render(
    source: str, variables: Mapping[str, Any], *, html: bool = False, what: str = "template"
) -> str:
    """Render ``source`` with ``variables``; every failure is a :class:`TemplateError`."""
    try:
        return _compiled(source, html).render(**variables)
    except SecurityError as exc:
        raise TemplateError(
            f"{what} tried something the template sandbox forbids ({exc}); "
            "templates may use the customer's fields, not Python internals"
        ) from None
    except JinjaTemplateError as exc:
        raise TemplateError(f"{what} cannot be rendered: {exc}") from None


def check(source: str, *, what: str = "template") -> None:
    """Refuse a template that does not even parse, before a journey is activated."""
    try:
        _TEXT.parse(source)
    except JinjaTemplateError as exc:
        raise TemplateError(f"{what} has a syntax error: {exc}") from None
