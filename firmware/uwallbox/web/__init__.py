"""The wallbox's own web page (docs/WEB.md): imported only when WebServerEnabled is true and an
admin password exists (app.py), or in setup mode (setup.py). Port and address from the board
(WEB_PORT, default 80; WEB_HOST, default all interfaces)."""


def start(app):
    """Serve the station page as the app's task "web"; the log keeps its last lines from now."""
    from .. import log
    from .server import Web
    if log.tail is None:
        log.tail = []
    web = Web(app)
    app.web = web
    app.spawn("web", web.serve(getattr(app.board, "WEB_PORT", 80), getattr(app.board, "WEB_HOST", "0.0.0.0")))
    return web
