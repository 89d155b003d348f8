"""The tables: responses, conversations and their items, assistants, threads, messages,
runs and run steps, API keys, usage. Conventions every stored object follows:

- `seq`: an auto-incrementing integer key, the order of creation. Lists page on it
  (`store.pages`), because `created_at` has one-second resolution.
- `id`: the public id (`resp_…`, `conv_…`, `msg_…`), unique within its table.
- `created_at`: unix seconds, as the APIs show it.
- `metadata`: the client's free-form key/value JSON (attribute `meta`; SQLAlchemy keeps
  `metadata` for itself).
- An object's API-specific body is JSON (`data`, `request`, `output`), so the API's
  shapes can grow without a migration; columns are what a query filters or orders on.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hearth.store.tenants import creator

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
SeqType = BigInteger().with_variant(Integer(), "sqlite")
JsonType = JSON().with_variant(JSONB(), "postgresql")
Json = dict[str, Any]


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JsonType, list[Any]: JsonType}


class Stored:
    """The columns every top-level stored object has."""

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Tenanted:
    """Objects a key owns (store/tenants.py): `tenant` is the id of the database key that
    created it, None for an admin's static key or an open server."""

    tenant: Mapped[str | None] = mapped_column(String(64), default=creator, index=True)


class Conversation(Tenanted, Stored, Base):
    __tablename__ = "conversations"

    meta: Mapped[Json] = mapped_column("metadata", default=dict)


class ConversationItem(Base):
    """One item of a conversation (a message, a function call or its output): `data` is
    the item as the API shows it, id and type included."""

    __tablename__ = "conversation_items"
    __table_args__ = (Index("ix_conversation_items_conv_id", "conversation_id", "id", unique=True),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[Json]


class Response(Tenanted, Stored, Base):
    """A stored response. `request` holds the parameters it echoes back (instructions,
    temperature, text, tools, …); `output`, `usage`, `error` and `incomplete_details` are
    written when it ends. While it runs, its text so far is in `ResponseDelta` rows."""

    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_status", "status"),)

    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    background: Mapped[bool] = mapped_column(Boolean, default=False)
    # Plain ids, no foreign keys: deleting what a response points at must not delete it.
    previous_response_id: Mapped[str | None] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    # The output message's id, fixed at creation so a resumed stream names the same item.
    message_id: Mapped[str] = mapped_column(String(64))
    meta: Mapped[Json] = mapped_column("metadata", default=dict)
    request: Mapped[Json] = mapped_column(default=dict)
    output: Mapped[list[Any]] = mapped_column(default=list)
    usage: Mapped[Json | None]
    error: Mapped[Json | None]
    incomplete_details: Mapped[Json | None]
    completed_at: Mapped[float | None] = mapped_column(Float)
    # The server process running it ("host:pid:nonce") and when that process last said
    # it still is: how a restarted or another server tells a dead job from a live one.
    owner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[float | None] = mapped_column(Float)


class ResponseItem(Base):
    """One input item of a response (the message, function call output, … it was given)."""

    __tablename__ = "response_items"
    __table_args__ = (Index("ix_response_items_resp_id", "response_id", "id", unique=True),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64))
    response_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("responses.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[Json]


class ResponseDelta(Base):
    """The output steps of a running response (text deltas, pieces of function calls),
    flushed in batches: each row is a list of steps exactly as they were streamed, so a
    resumed stream numbers its events the same."""

    __tablename__ = "response_deltas"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("responses.id", ondelete="CASCADE"), index=True
    )
    deltas: Mapped[list[Any]]


# ---- the Assistants API -------------------------------------------------------------------
# Each row's `data` is the object as the API shows it, less what has a column of its own
# (metadata always; a run's status), which is laid over it when it is drawn.


class Assistant(Tenanted, Stored, Base):
    __tablename__ = "assistants"

    meta: Mapped[Json] = mapped_column("metadata", default=dict)
    data: Mapped[Json]


class Thread(Tenanted, Stored, Base):
    __tablename__ = "threads"

    meta: Mapped[Json] = mapped_column("metadata", default=dict)
    data: Mapped[Json]


class ThreadMessage(Stored, Base):
    __tablename__ = "thread_messages"

    thread_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("threads.id", ondelete="CASCADE"), index=True
    )
    # The run that wrote it (an assistant's reply); listed by `run_id` too.
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    meta: Mapped[Json] = mapped_column("metadata", default=dict)
    data: Mapped[Json]


class Run(Stored, Base):
    """A run of an assistant on a thread. `owner` and `heartbeat_at` as on Response: the
    server process executing it, so a restart fails only the runs of dead servers."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_thread_status", "thread_id", "status"),)

    thread_id: Mapped[str] = mapped_column(String(64), ForeignKey("threads.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    meta: Mapped[Json] = mapped_column("metadata", default=dict)
    data: Mapped[Json]
    owner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[float | None] = mapped_column(Float)


class RunStep(Stored, Base):
    __tablename__ = "run_steps"

    thread_id: Mapped[str] = mapped_column(String(64), ForeignKey("threads.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    data: Mapped[Json]


# ---- API keys -----------------------------------------------------------------------------


class ApiKey(Stored, Base):
    """A client's API key. Only its SHA-256 digest is kept (hex), never the key; `prefix`
    is the key's first characters, shown to tell keys apart. Times are unix seconds. The
    limits (None: unlimited) are recorded for the enforcement to come."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    budget_tokens: Mapped[int | None] = mapped_column(BigInteger)
    budget_period: Mapped[str | None] = mapped_column(String(8))
    models: Mapped[list[Any] | None]
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


# ---- usage --------------------------------------------------------------------------------


class UsageRecord(Base):
    """One request's use of a model, written when its generation (or embedding) ended.
    `key_id` is None for a static `--api-key` key or an open server; `key_name` is the
    Principal's name (never the key). `at` is unix seconds; a day is `at // 86400` (UTC)."""

    __tablename__ = "usage"
    __table_args__ = (
        Index("ix_usage_at", "at"),
        Index("ix_usage_key_name_at", "key_name", "at"),
        Index("ix_usage_key_id", "key_id"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str | None] = mapped_column(String(64))
    key_name: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    surface: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cached_tokens: Mapped[int] = mapped_column(Integer)


class RateLimit(Base):
    """The shared counters of a key with limits, one row per key, updated only by single
    conditional UPDATEs (store/limits.py) so that replicas sharing the database admit
    together no more than the limits. `*_tat` are GCRA theoretical arrival times (unix
    seconds) of requests and tokens; `budget_used` counts tokens since `budget_start`, the
    start of the key's current budget period (unix seconds; an older one reads as 0)."""

    __tablename__ = "rate_limits"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    requests_tat: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_tat: Mapped[float] = mapped_column(Float, default=0.0)
    budget_start: Mapped[int] = mapped_column(BigInteger, default=0)
    budget_used: Mapped[int] = mapped_column(BigInteger, default=0)


class LimitHold(Base):
    """The requests of a key (with a limit of concurrent requests) that one server process
    (`owner`, as services/jobs/owners.py names it) is running. The process renews
    `heartbeat_at` while it holds any; a row whose heartbeat is stale (its process died)
    no longer counts."""

    __tablename__ = "limit_holds"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    held: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[float] = mapped_column(Float, default=0.0)


# ---- Message Batches (the Anthropic API) --------------------------------------------------


class MessageBatch(Stored, Base):
    """A Message Batch. `status` is its processing_status (in_progress, canceling, ended);
    its request counts are counted from its requests' rows. It belongs to the key that
    created it: `key_id` (None for a static key or an open server) and `key_name`, whom
    its requests act for, also after a restart. Times are unix seconds (floats where
    Anthropic shows fractions). `owner` and `heartbeat_at` as on Response."""

    __tablename__ = "message_batches"
    __table_args__ = (Index("ix_message_batches_status", "status"),)

    status: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str | None] = mapped_column(String(64), index=True)
    key_name: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[float | None] = mapped_column(Float)
    cancel_initiated_at: Mapped[float | None] = mapped_column(Float)
    owner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[float | None] = mapped_column(Float)


class MessageBatchRequest(Base):
    """One request of a batch: its `params` (a /v1/messages body) and, once it has one, its
    `result` as the results file shows it. `status`: pending, running, or the result's
    type (succeeded, errored, canceled, expired)."""

    __tablename__ = "message_batch_requests"
    __table_args__ = (
        Index("ix_message_batch_requests_custom_id", "batch_id", "custom_id", unique=True),
        Index("ix_message_batch_requests_status", "batch_id", "status"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("message_batches.id", ondelete="CASCADE")
    )
    custom_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    params: Mapped[Json]
    result: Mapped[Json | None]
