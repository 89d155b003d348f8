"""The stream's events, numbered. A live stream and a resumed one (`GET …?stream=true`)
draw the same events in the same order from the same steps, so a sequence number names
the same event in both."""

from __future__ import annotations

from typing import Any

from hearth.services.items import assistant_message, output_text_part
from hearth.services.responses.objects import ACTIVE, TERMINAL_EVENT, render
from hearth.store.models import Response


class EventNumbers:
    def __init__(self) -> None:
        self.next = 0

    def event(self, type_: str, **payload: Any) -> dict[str, Any]:
        out = {"type": type_, **payload, "sequence_number": self.next}
        self.next += 1
        return out


def opened(n: EventNumbers, row: Response) -> list[dict[str, Any]]:
    status = "queued" if row.background else "in_progress"
    return [n.event("response.created", response=render(row, status=status, output=[]))]


def started(n: EventNumbers, row: Response) -> list[dict[str, Any]]:
    ids = {"item_id": row.message_id, "output_index": 0, "content_index": 0}
    return [
        n.event("response.in_progress", response=render(row, status="in_progress", output=[])),
        n.event(
            "response.output_item.added",
            output_index=0,
            item={**assistant_message(row.message_id, "", "in_progress"), "content": []},
        ),
        n.event("response.content_part.added", **ids, part=output_text_part("")),
    ]


def delta(n: EventNumbers, row: Response, text: str) -> dict[str, Any]:
    return n.event(
        "response.output_text.delta",
        item_id=row.message_id,
        output_index=0,
        content_index=0,
        delta=text,
        logprobs=[],
    )


def closed(n: EventNumbers, row: Response, text: str, began: bool) -> list[dict[str, Any]]:
    """The closing events of an ended response; `began` says whether its message was
    opened (a response that failed while queued has none)."""
    events = []
    if began:
        ids = {"item_id": row.message_id, "output_index": 0, "content_index": 0}
        item = row.output[0] if row.output else assistant_message(row.message_id, text)
        events += [
            n.event("response.output_text.done", **ids, text=text, logprobs=[]),
            n.event("response.content_part.done", **ids, part=output_text_part(text)),
            n.event("response.output_item.done", output_index=0, item=item),
        ]
    events.append(n.event(TERMINAL_EVENT[row.status], response=render(row, text)))
    return events


def replay(row: Response, deltas: list[str]) -> list[dict[str, Any]]:
    """Every event so far of a stored response, from its row and its saved deltas."""
    n = EventNumbers()
    events = opened(n, row)
    began = bool(row.output or deltas or row.status == "in_progress")
    if began:
        events += started(n, row)
        events += [delta(n, row, d) for d in deltas]
    if row.status not in ACTIVE:
        events += closed(n, row, "".join(deltas), began)
    return events
