"""The navigation registry: where other feature areas add their pages.

A feature adds its pages by registering its router and a :class:`NavItem`
before :func:`kizuna.web.app.mount` runs::

    from kizuna.web.nav import ALL_ROLES, NavItem, register, register_router
    register_router(rfm_router)
    register(NavItem("rfm", "/analytics/rfm", "nav.rfm", ALL_ROLES, 30))

``label_key`` must exist in both message catalogues (``web/i18n/*.toml``); the
header shows an item only to the roles it lists. The route itself must still
check the role (:func:`kizuna.web.auth.require`): hiding a link is not security.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter

ALL_ROLES: tuple[str, ...] = ("admin", "marketer", "analyst")
EDITORS: tuple[str, ...] = ("admin", "marketer")


@dataclass(frozen=True)
class NavItem:
    """One entry of the main navigation."""

    key: str
    path: str
    label_key: str
    roles: tuple[str, ...] = ALL_ROLES
    #: Lower comes first; built-ins use multiples of 10 so others fit between.
    order: int = 100


NAV: list[NavItem] = [
    NavItem("overview", "/", "nav.overview", ALL_ROLES, 10),
    NavItem("customers", "/customers", "nav.customers", ALL_ROLES, 20),
    NavItem("data", "/data", "nav.data", ALL_ROLES, 90),
    NavItem("admin", "/admin", "nav.admin", ("admin",), 100),
]


#: Routers of pages added by other feature areas; :func:`kizuna.web.app.mount`
#: includes them behind the same CSRF check as the built-in pages.
ROUTERS: list[APIRouter] = []


def register_router(router: APIRouter) -> None:
    """Serve ``router``'s pages in the dashboard (call before :func:`mount`)."""
    if router not in ROUTERS:
        ROUTERS.append(router)


def register(item: NavItem) -> None:
    """Add (or replace, by key) a navigation entry."""
    NAV[:] = [n for n in NAV if n.key != item.key] + [item]


def items_for(role: str) -> list[NavItem]:
    """The entries ``role`` may open, in display order."""
    return sorted((n for n in NAV if role in n.roles), key=lambda n: (n.order, n.key))
