"""A response's output items and stream events, built from its steps.

A step is what the engine produced next: a text delta (a string, or a dict of `text`
and its tokens' `logprobs` when the request included them) or a piece of a function
call (a dict; the first piece of a call carries its `call_id`, `item_id` and `name`,
every piece some of its `args`). The steps are what a job saves as it goes, so
a live stream and a resumed one (`GET …?stream=true`) draw the same events, with the
same sequence numbers, from the same steps; and a poller sees the same output items.
"""

from __future__ import annotations

import copy
from typing import Any

from hearth.services.items import assistant_message, output_text_part, reasoning_item
from hearth.services.responses.objects import ACTIVE, TERMINAL_EVENT, render
from hearth.store.models import Response

Step = str | dict[str, Any]


class OutputBuilder:
    def __init__(self, row: Response) -> None:
        self.row = row
        self.items: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._held: list[dict[str, Any]] = []  # logprobs whose text has not come yet
        self._next = 0

    def _event(self, type_: str, **payload: Any) -> dict[str, Any]:
        out = {"type": type_, **payload, "sequence_number": self._next}
        self._next += 1
        return out

    def _ids(self, item: dict[str, Any]) -> dict[str, Any]:
        index = next(i for i, it in enumerate(self.items) if it is item)
        return {"item_id": item["id"], "output_index": index}

    # ---- the stream's events ----------------------------------------------------------

    def opened(self) -> list[dict[str, Any]]:
        status = "queued" if self.row.background else "in_progress"
        return [self._event("response.created", response=render(self.row, status, output=[]))]

    def started(self) -> list[dict[str, Any]]:
        snapshot = render(self.row, "in_progress", output=[])
        return [self._event("response.in_progress", response=snapshot)]

    def step(self, step: Step) -> list[dict[str, Any]]:
        if isinstance(step, str):
            return self._text(step, [])
        if "text" in step:
            return self._text(step["text"], step["logprobs"])
        if "reasoning" in step:
            return self._reasoning(step["reasoning"])
        events: list[dict[str, Any]] = []
        if "call_id" in step:
            events += self._close_open("completed")
            item = {
                "id": step["item_id"],
                "type": "function_call",
                "call_id": step["call_id"],
                "name": step["name"],
                "arguments": "",
                "status": "in_progress",
            }
            self._add(item)
            events.append(self._added(item))
        call = self._open
        if step.get("args") and call is not None and call["type"] == "function_call":
            call["arguments"] += step["args"]
            events.append(
                self._event(
                    "response.function_call_arguments.delta", **self._ids(call), delta=step["args"]
                )
            )
        return events

    def _text(self, text: str, logprobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A text delta. A token that ends inside a character (or in a possible stop
        string) brings its logprob before its text: it waits for the next delta."""
        events: list[dict[str, Any]] = []
        if self._open is None or self._open["type"] != "message":
            events += self._close_open("completed")
            events += self._open_message()
        message = self._open
        assert message is not None
        part = message["content"][0]
        part["logprobs"] += logprobs
        self._held += logprobs
        if not text:
            return events
        part["text"] += text
        held, self._held = self._held, []
        events.append(
            self._event(
                "response.output_text.delta",
                **self._ids(message),
                content_index=0,
                delta=text,
                logprobs=held,
            )
        )
        return events

    def _reasoning(self, text: str) -> list[dict[str, Any]]:
        """A delta of the model's reasoning: its own item, before the answer's message."""
        events: list[dict[str, Any]] = []
        item = self._open
        if item is None or item["type"] != "reasoning":
            events += self._close_open("completed")
            count = sum(it["type"] == "reasoning" for it in self.items)
            suffix = self.row.message_id.split("_", 1)[-1] + (f"_{count}" if count else "")
            item = reasoning_item("rs_" + suffix, "", "in_progress")
            self._add(item)
            events.append(self._added(item))
        item["content"][0]["text"] += text
        events.append(
            self._event(
                "response.reasoning_text.delta", **self._ids(item), content_index=0, delta=text
            )
        )
        return events

    def close(self, status: str) -> list[dict[str, Any]]:
        """The open item's closing events; every item takes its final status."""
        item_status = "completed" if status == "completed" else "incomplete"
        events = self._close_open(item_status)
        for item in self.items:
            item["status"] = item_status
        return events

    def terminal(self) -> dict[str, Any]:
        return self._event(TERMINAL_EVENT[self.row.status], response=render(self.row))

    # ---- items --------------------------------------------------------------------------

    def output(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.items)

    @property
    def text(self) -> str:
        return "".join(
            part["text"]
            for item in self.items
            if item["type"] == "message"
            for part in item["content"]
        )

    def _add(self, item: dict[str, Any]) -> None:
        self.items.append(item)
        self._open = item

    def _added(self, item: dict[str, Any]) -> dict[str, Any]:
        shown = {**copy.deepcopy(item), **({"content": []} if "content" in item else {})}
        return self._event(
            "response.output_item.added", output_index=len(self.items) - 1, item=shown
        )

    def _open_message(self) -> list[dict[str, Any]]:
        count = sum(item["type"] == "message" for item in self.items)
        message_id = self.row.message_id if not count else f"{self.row.message_id}_{count}"
        item = assistant_message(message_id, "", "in_progress")
        self._held = []
        self._add(item)
        added = self._added(item)
        part = self._event(
            "response.content_part.added",
            **self._ids(item),
            content_index=0,
            part=output_text_part(""),
        )
        return [added, part]

    def _close_open(self, status: str) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        ids = self._ids(item)
        item["status"] = status
        events = []
        if item["type"] == "reasoning":
            text = item["content"][0]["text"]
            events.append(
                self._event("response.reasoning_text.done", **ids, content_index=0, text=text)
            )
        elif item["type"] == "message":
            part = copy.deepcopy(item["content"][0])
            events += [
                self._event(
                    "response.output_text.done",
                    **ids,
                    content_index=0,
                    text=part["text"],
                    logprobs=part["logprobs"],
                ),
                self._event("response.content_part.done", **ids, content_index=0, part=part),
            ]
        else:
            events.append(
                self._event(
                    "response.function_call_arguments.done", **ids, arguments=item["arguments"]
                )
            )
        events.append(
            self._event(
                "response.output_item.done",
                output_index=ids["output_index"],
                item=copy.deepcopy(item),
            )
        )
        return events


def rebuilt(row: Response, steps: list[Step]) -> tuple[OutputBuilder, list[dict[str, Any]]]:
    """A stored response's builder and every event so far, from its row and saved steps."""
    builder = OutputBuilder(row)
    events = builder.opened()
    # Completed or incomplete, it ran, even with nothing to show; failed or cancelled
    # with nothing, it may have ended while still queued (not told apart when replayed).
    began = bool(row.output or steps or row.status in {"in_progress", "completed", "incomplete"})
    if began:
        events += builder.started()
        for step in steps:
            events += builder.step(step)
    if row.status not in ACTIVE:
        if began:
            events += builder.close(row.status)
        events.append(builder.terminal())
    return builder, events
