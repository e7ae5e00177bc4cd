# Test doubles shared by the MicroPython cases.
import asyncio


class Session:
    """What the station's parts ask of app.session: `online` (an asyncio.Event) and `registration`."""

    def __init__(self, online=False, registration=None):
        self.online = asyncio.Event()
        if online:
            self.online.set()
        self.registration = registration


class FakeRpc:
    """An Rpc stand-in: CALLs are recorded in `sent` (action, a copy of the payload), the work
    handlers queue for after their answer in `later` ((task name, coroutine)). `answers[action]` is
    the CALLRESULT payload, an exception the CALL raises, or fn(payload) giving either; {} by
    default."""

    def __init__(self, answers=None, app=None):
        self.answers = answers or {}
        self.app = app
        self.sent = []
        self.uids = []  # the message id of each CALL (None: the Rpc's own)
        self.later = []

    def after(self, name, coro):
        self.later.append((name, coro))

    async def call(self, action, payload, timeout=30, uid=None):
        self.sent.append((action, dict(payload)))
        self.uids.append(uid)
        a = self.answers.get(action, {})
        if callable(a):
            a = a(payload)
        if isinstance(a, Exception):
            raise a
        return a

    async def flush(self):
        """Run what the handler queued for after its answer, one task after the other, as the
        app's tasks (app.spawn), as Rpc does."""
        while self.later:
            await self.app.spawn(*self.later.pop(0))


def app(answers=None):
    """The real App of the sim board, registered, on a FakeRpc."""
    import board  # here: the cases that need only the doubles do not pay for the App's heap
    from uwallbox.app import App

    a = App(board)
    a.rpc = FakeRpc(answers, a)
    a.session.registration = "Accepted"
    return a
