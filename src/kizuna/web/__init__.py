"""The marketer's dashboard: server-rendered pages in Japanese and English.

``mount(app, ctx)`` adds it to a FastAPI app; ``create_dashboard_app(ctx)``
makes an app with the dashboard alone. Other feature areas add pages through
:mod:`kizuna.web.nav` and their own routers.
"""

from __future__ import annotations

from kizuna.web.app import create_dashboard_app, mount

__all__ = ["create_dashboard_app", "mount"]
