"""Message templates in a Jinja2 sandbox.

Templates are written by marketers, not developers, so they render in a
:class:`~jinja2.sandbox.SandboxedEnvironment`: ``{{ ''.__class__.__mro__ }}``
and friends raise instead of reaching Python internals. HTML bodies are
autoescaped so a customer named ``<script>`` stays text.

Templates may also call *template functions* (``{{ recommendations(3) }}``)
that plugins register with :func:`register_function`. They read the
database for the customer of the message, so the sender binds both with
:func:`customer_scope` while it renders; outside a scope (the trial render
that validates a journey) a function gets ``conn=None`` and returns a
harmless placeholder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from kizuna.errors import TemplateError

_TEXT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
_HTML = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)

#: ``fn(conn, customer, *args)``: ``conn`` is None outside :func:`customer_scope`.
TemplateFunction = Callable[..., Any]
_FUNCTIONS: dict[str, TemplateFunction] = {}
_SCOPE: ContextVar[tuple[Any, Mapping[str, Any]] | None] = ContextVar(
    "kizuna_template_scope", default=None
)


def register_function(name: str, fn: TemplateFunction) -> None:
    """Make ``fn`` callable from every template as ``name(...)``."""
    _FUNCTIONS[name] = fn

    def call(*args: Any, **kwargs: Any) -> Any:
        conn, customer = _SCOPE.get() or (None, {})
        return fn(conn, customer, *args, **kwargs)

    _TEXT.globals[name] = call
    _HTML.globals[name] = call


@contextmanager
def customer_scope(conn: Any, customer: Mapping[str, Any]) -> Iterator[None]:
    """Let template functions read ``conn`` for ``customer`` while rendering inside."""
    token = _SCOPE.set((conn, customer))
    try:
        yield
    finally:
        _SCOPE.reset(token)


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
