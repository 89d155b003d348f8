"""The output items and events a response's steps make, live and replayed alike."""

from __future__ import annotations

from hearth.services.responses.events import OutputBuilder, rebuilt
from hearth.store.models import Response

STEPS = [
    "Let me ",
    "check.",
    {"call_id": "call_1", "item_id": "fc_1", "name": "weather", "args": '{"city":'},
    {"args": '"Oslo"}'},
    {"call_id": "call_2", "item_id": "fc_2", "name": "time"},
    "Done",
]


def _row(status: str) -> Response:
    return Response(
        id="resp_1", created_at=1, status=status, model="m", background=True,
        message_id="msg_1", meta={}, request={}, output=[],
    )  # fmt: skip


def _live(status: str) -> list[dict[str, object]]:
    row = _row("in_progress")
    builder = OutputBuilder(row)
    events = builder.opened() + builder.started()
    for step in STEPS:
        events += builder.step(step)
    closing = builder.close(status)
    row.status, row.output = status, builder.output()
    return events + closing + [builder.terminal()]


def test_text_and_calls_become_items_in_order() -> None:
    events = _live("completed")
    types = [e["type"] for e in events]
    assert types == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    output = events[-1]["response"]["output"]  # type: ignore[index]
    assert [(i["type"], i["id"], i["status"]) for i in output] == [
        ("message", "msg_1", "completed"), ("function_call", "fc_1", "completed"),
        ("function_call", "fc_2", "completed"), ("message", "msg_1_1", "completed"),
    ]  # fmt: skip
    assert output[0]["content"][0]["text"] == "Let me check."
    assert output[1]["arguments"] == '{"city":"Oslo"}' and output[2]["arguments"] == ""
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [
        0, 1, 2, 3,
    ]  # fmt: skip


def test_replay_from_saved_steps_matches_the_live_stream() -> None:
    for status in ("completed", "incomplete", "cancelled", "failed"):
        live = _live(status)
        row = _row(status)
        row.output = live[-1]["response"]["output"]  # type: ignore[index]
        _, replayed = rebuilt(row, STEPS)
        assert replayed == live


def test_a_response_that_ran_but_said_nothing_replays_as_it_streamed() -> None:
    for status in ("completed", "incomplete"):
        row = _row("in_progress")
        builder = OutputBuilder(row)
        live = builder.opened() + builder.started() + builder.close(status)
        row.status = status
        live.append(builder.terminal())
        _, replayed = rebuilt(_row(status), [])
        assert [e["type"] for e in replayed] == [e["type"] for e in live]
        assert [e["type"] for e in live][:2] == ["response.created", "response.in_progress"]


def test_a_running_response_shows_its_items_so_far() -> None:
    builder, events = rebuilt(_row("in_progress"), STEPS[:4])
    assert events[-1]["type"] == "response.function_call_arguments.delta"
    items = builder.output()
    assert [i["status"] for i in items] == ["completed", "in_progress"]
    assert items[1]["arguments"] == '{"city":"Oslo"}'
    _, queued = rebuilt(_row("queued"), [])
    assert [e["type"] for e in queued] == ["response.created"]
    assert queued[0]["response"]["status"] == "queued"  # type: ignore[index]


def _lp(token: str) -> dict[str, object]:
    return {"token": token, "logprob": -0.5, "bytes": list(token.encode()), "top_logprobs": []}


def test_a_token_without_text_brings_its_logprob_with_the_next_delta() -> None:
    """The first half of a character: its logprob waits for the text it helped make."""
    builder = OutputBuilder(_row("in_progress"))
    half, rest, end = _lp("\\xc3"), _lp("\\xa9"), _lp("!")
    events = builder.step({"text": "", "logprobs": [half]})
    events += builder.step({"text": "é", "logprobs": [rest]})
    events += builder.step({"text": "!", "logprobs": [end]})
    events += builder.close("completed")
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [(d["delta"], d["logprobs"]) for d in deltas] == [("é", [half, rest]), ("!", [end])]
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == "é!" and done["logprobs"] == [half, rest, end]
    assert builder.output()[0]["content"][0]["logprobs"] == [half, rest, end]
