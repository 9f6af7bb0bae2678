"""The extra ``viz`` for the dashboard and the explorer: Panel (its server and notebook rendering) on Bokeh.

Imported only when a dashboard is built, so ``import abm`` works without the extra; without it the error names the
extra to install rather than a missing module deep in a traceback.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from abm.errors import AbmError

INSTALL_HINT = "pip install -e '.[viz]'"
HOST = "127.0.0.1"  # the dashboard and the explorer listen on loopback only


class VizMissing(AbmError):
    """The dashboard and the explorer need the optional extra ``viz`` (panel, bokeh)."""


def panel() -> Any:
    """The ``panel`` module with its extension loaded (tables too), or ``VizMissing`` naming the extra."""
    try:
        import bokeh  # noqa: F401
        import panel as pn
    except ImportError as e:
        raise VizMissing(f"the dashboard and the explorer need panel and bokeh ({e.name} is not installed): "
                         f"{INSTALL_HINT}") from None
    if not getattr(pn.extension, "_abm_loaded", False):
        pn.extension("tabulator", notifications=False)
        pn.extension._abm_loaded = True  # type: ignore[attr-defined]
    return pn


def widget(cls: Any, label: str, color: Optional[str] = None, **kw: Any) -> Any:
    """A Panel widget titled ``label`` in ``color`` ("primary", "success", ...): Panel 1.9 calls the title ``label``
    and the colour ``color`` (``name`` and ``button_type`` are deprecated), older ones ``name`` and ``button_type``."""
    kw["label" if "label" in cls.param else "name"] = label
    if color is not None:
        kw["color" if "color" in cls.param else "button_type"] = color
    return cls(**kw)


class Server:
    """A Panel server on 127.0.0.1 in a thread of its own; ``stop()`` ends it (tests and notebooks stop theirs)."""

    __slots__ = ("port", "url", "_thread")

    def __init__(self, app: Callable[[], Any], port: int, title: str) -> None:
        pn = panel()
        self.port = port
        self.url = f"http://{HOST}:{port}/"
        self._thread = pn.serve(app, port=port, address=HOST, websocket_origin=[f"{HOST}:{port}", f"localhost:{port}"],
                                show=False, start=True, threaded=True, title=title, verbose=False)

    def stop(self) -> None:
        self._thread.stop()
        self._thread.join(timeout=10)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_forever(app: Callable[[], Any], port: int, title: str) -> None:
    """``abm dashboard`` and ``abm explore``: serve ``app`` on 127.0.0.1:``port`` until interrupted."""
    pn = panel()
    pn.serve(app, port=port, address=HOST, websocket_origin=[f"{HOST}:{port}", f"localhost:{port}"], show=False,
             start=True, threaded=False, title=title, verbose=True)
