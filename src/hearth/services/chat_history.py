"""Chat turns that continue a stored conversation (the WebSocket's `conversation`).

The history is the conversation's items; a finished turn joins it as its new input items
and the reply, in the same shapes a response's turn is stored in, so the Conversations
and Responses APIs read a chat turn exactly like one of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from hearth.core.errors import NotFound
from hearth.core.ids import new_id
from hearth.engine.types import ChatMessage
from hearth.services.chat_session import Reply
from hearth.services.conversations import ConversationsService
from hearth.services.items import assistant_message, normalize_input, to_messages

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Turn:
    """A turn on its way: where it goes, and its new input as stored items."""

    conversation_id: str
    items: list[dict[str, Any]]


async def begin(
    conversations: ConversationsService, conversation_id: str, messages: list[dict[str, Any]]
) -> tuple[list[ChatMessage], Turn]:
    """The conversation's history as chat messages, and the turn that the new `messages`
    (`{role, content}` each) begin. A conversation that does not exist is a NotFound."""
    items = normalize_input(messages, "messages")
    history = to_messages(await conversations.context(conversation_id))
    return history, Turn(conversation_id, items)


async def record(conversations: ConversationsService, turn: Turn, reply: Reply) -> None:
    """The turn joins its conversation: a stopped reply as far as it got, with the status
    the Responses API gives an unfinished one. Never raises: the reply was delivered."""
    if reply.finish_reason == "cancelled" and not reply.text:
        return  # stopped before a word: the turn did not happen
    status = "completed" if reply.finish_reason in {"stop", "tool_calls"} else "incomplete"
    answer = assistant_message(new_id("msg_"), reply.text, status)
    try:
        await conversations.append(turn.conversation_id, [*turn.items, answer])
    except NotFound:
        log.info("conversation %s was deleted while its turn ran", turn.conversation_id)
    except Exception:
        log.exception("could not store a turn of conversation %s", turn.conversation_id)
