"""Where each generation request gets its admission ticket: ``AdmissionMiddleware`` (the count and
the ticket are openai/admission.py; serving takes the ticket once the request is checked). Pure ASGI,
so that streaming and disconnect detection are untouched; the ticket is given back as the last body
chunk goes out."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sglang_hathora.openai.admission import GENERATION_PATHS, TICKET_KEY, Admission, Ticket


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in GENERATION_PATHS or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        ticket = Ticket(self.admission)
        scope.setdefault("state", {})[TICKET_KEY] = ticket

        async def releasing_send(message: Message) -> None:
            # Free the slot as the last body chunk goes out, not when the app returns: a client that
            # reads the end of one stream and at once sends the next must find the slot free.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                ticket.give_back()
            await send(message)

        try:
            await self.app(scope, receive, releasing_send)
        finally:
            ticket.give_back()
