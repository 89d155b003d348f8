"""The scheduler thread: owns one llama.cpp context and runs continuous batching.

Each step puts one token of every decoding sequence plus prompt chunks of newly admitted
ones into a single llama_batch, calls llama_decode once (which releases the GIL), samples
every sequence that produced logits, and hands the resulting events to asyncio in one
`call_soon_threadsafe` per event loop.

The KV cache is unified: all slots share its cells, so one long request may use most of
it. (Separate per-slot streams would make a sequence's numerics independent of its batch
neighbours, but this llama.cpp splits a batch over streams into equal-length ubatches of
consecutive sequence ids, turning a prefill chunk next to decoding sequences into one
graph evaluation per token: far too slow for continuous batching.)

Slots are llama.cpp sequence ids. Where cells live is placement.py's policy; in short: a
slot keeps the KV cells of what it last ran. A new
request starts from the longest prefix any slot holds (a conversation's next turn, a
common system prompt, the prompt of the `n` choices of one request): that prefix's cells
are shared with `llama_memory_seq_cp`, and only the rest is decoded. The `n` choices of
one request are admitted together; all but the first wait until the first has decoded
the prompt, then share it. While anything decodes, idle caches wait in host memory
(host_cache.py) rather than in the context, where their cells would slow every decoding
token; a request that continues one has it copied back. Idle caches leave the context
least-recently-used first when cells run short; a running sequence that no longer fits
is preempted and re-queued with its output so far, so it resumes later exactly where it
was (its sampler state is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hearth.core.errors import EngineError, InvalidRequest, Overloaded, QueueTimeout
from hearth.engine.llama_cpp.batch import TokenBatch
from hearth.engine.llama_cpp.budget import ReasoningBudget
from hearth.engine.llama_cpp.host_cache import HostCache, LlamaSeqStates
from hearth.engine.llama_cpp.kv import KvCache, LlamaMemory, Slot
from hearth.engine.llama_cpp.lib import llama
from hearth.engine.llama_cpp.logprobs import token_logprob
from hearth.engine.llama_cpp.model import LlamaModel
from hearth.engine.llama_cpp.placement import Placement, loses_cells, next_to_admit, yields_slot
from hearth.engine.llama_cpp.sampling import Bias, Sampler, TokenText, needs_sampler
from hearth.engine.textstream import OutputText
from hearth.engine.types import (
    Finished,
    FinishReason,
    GenerationEvent,
    Grammar,
    SamplingParams,
    TokenEvent,
    TokenLogprob,
    Usage,
)

log = logging.getLogger(__name__)


# A sampling step of one sequence longer than this is logged: the whole batch waits on it.
SLOW_SAMPLE_S = 0.05
# How long a step that produced first tokens waits for the event loop to take them (see
# _flush); a bound, not a cost: the loop takes them in well under a millisecond.
HANDOFF_WAIT_S = 0.002


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    ctx_size: int
    parallel: int
    batch_size: int
    host_cache_bytes: int
    threads: int
    max_queue: int
    queue_timeout: float


@dataclass(eq=False)
class Sequence:
    """One choice of one request. Created on the event loop, then owned by the scheduler
    thread; the loop only ever sets `cancelled`."""

    prompt: list[int]
    sampling: SamplingParams
    max_tokens: int
    stops: tuple[str, ...]
    logprobs: int | None
    grammar: Grammar | None
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[GenerationEvent]
    admitted: asyncio.Future[int]
    index: int = 0
    leader: Sequence | None = None  # choice 0 of the same request, for choices 1..n-1
    enqueued_at: float = field(default_factory=time.monotonic)
    request_id: str = ""
    batch: bool = False  # batch priority: yields to interactive requests (placement.py)
    cancelled: bool = False
    # scheduler-thread state
    pending: list[int] = field(default_factory=list)  # tokens still to feed before sampling
    generated: list[int] = field(default_factory=list)
    slot: Slot | None = None
    sampler: Sampler | None = None
    bias: Bias | None = None  # a greedy request's logit_bias, when it has no sampler
    text: OutputText | None = None
    reasoning: ReasoningBudget | None = None  # a reasoning budget's watch, when it has one
    cached_tokens: int = 0
    started: bool = False
    emitted: bool = False  # has had an event sent
    done: bool = False
    slow_warned_at: float = 0.0  # when a slow sampling step of it was last logged


def _resolve(fut: asyncio.Future[int], value: int | BaseException) -> None:
    if fut.done():
        return
    if isinstance(value, BaseException):
        fut.set_exception(value)
    else:
        fut.set_result(value)


def _call(loop: asyncio.AbstractEventLoop, fn: object, *args: object) -> None:
    # A closed loop means whoever waited there is gone.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(fn, *args)  # type: ignore[arg-type]


def _deliver(
    items: list[tuple[asyncio.Queue[GenerationEvent], GenerationEvent]],
    taken: threading.Event | None = None,
    firsts: int = 0,
) -> None:
    """Queue the events; with `taken`, set it once the readers of the first `firsts`
    (sequences' first outputs) have run their turn (for a stream, written the chunk):
    it is queued behind their wake-ups and ahead of the others'."""
    for queue, event in items[:firsts]:
        queue.put_nowait(event)
    if taken is not None:
        asyncio.get_running_loop().call_soon(taken.set)
    for queue, event in items[firsts:]:
        queue.put_nowait(event)


class Scheduler:
    def __init__(self, model: LlamaModel, config: SchedulerConfig) -> None:
        if config.parallel > config.batch_size:
            # Every decoding sequence puts a token in each step's batch.
            raise ValueError(
                f"parallel ({config.parallel}) must not exceed batch_size ({config.batch_size})"
            )
        self.model = model
        self.config = config
        params = llama.llama_context_default_params()
        params.n_ctx = config.ctx_size
        params.n_batch = config.batch_size
        params.n_ubatch = config.batch_size
        params.n_seq_max = config.parallel
        params.n_threads = config.threads
        params.n_threads_batch = config.threads
        params.kv_unified = True  # any one sequence may use the whole cache
        params.no_perf = True
        self.ctx = llama.llama_init_from_model(model.ptr, params)
        if not self.ctx:
            raise EngineError("llama.cpp could not create a context (out of memory?)")
        self.n_ctx = int(llama.llama_n_ctx(self.ctx))
        # One request may use up to this many positions (prompt + completion).
        self.seq_limit = min(self.n_ctx, model.n_ctx_train or self.n_ctx)
        memory = LlamaMemory(llama.llama_get_memory(self.ctx))
        self.kv = KvCache(memory, self.n_ctx, config.parallel)
        self.host = HostCache(LlamaSeqStates(self.ctx), config.host_cache_bytes)
        self.placement = Placement(self.kv, self.host)
        self._batch = TokenBatch(config.batch_size)
        self._views: dict[tuple[int, int], np.ndarray] = {}
        self._token_text = TokenText(
            piece=lambda token: model.piece(token, special=True),
            tokenize=lambda text: model.tokenize(text, add_special=False, parse_special=False),
        )
        self._waiting: deque[Sequence] = deque()
        self._running: list[Sequence] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._cancels = False  # set by cancel(), under the lock
        self._firsts: dict[asyncio.AbstractEventLoop, int] = {}  # first outputs, per outbox
        self._outbox: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Queue[GenerationEvent], GenerationEvent]]
        ] = {}
        self._thread = threading.Thread(target=self._run, name="hearth-scheduler", daemon=True)
        self._thread.start()

    # ---- event-loop side -------------------------------------------------------------

    def submit(
        self,
        prompt: list[int],
        samplings: list[SamplingParams],
        max_tokens: int,
        stops: tuple[str, ...],
        logprobs: int | None = None,
        grammar: Grammar | None = None,
        request_id: str = "",
        budget: Callable[[], ReasoningBudget] | None = None,
        *,
        batch: bool = False,
    ) -> list[Sequence]:
        """Queue one request with a choice per sampling; they share one event queue. A
        reasoning `budget` makes each choice's watch. A batch request is not bounded by
        the queue (its caller runs a few at a time) and never times out waiting: it waits
        while interactive requests go first."""
        if len(samplings) > self.config.parallel:
            raise InvalidRequest(
                f"n={len(samplings)} is more than this server decodes at once "
                f"(--parallel {self.config.parallel})",
                param="n",
            )
        if self._stopping or not self._thread.is_alive():
            raise EngineError("this model's engine has stopped; it is being unloaded or failed")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        group: list[Sequence] = []
        for index, sampling in enumerate(samplings):
            seq = Sequence(
                prompt=prompt,
                sampling=sampling,
                max_tokens=max_tokens,
                stops=stops,
                logprobs=logprobs,
                grammar=grammar,
                loop=loop,
                events=events,
                admitted=loop.create_future(),
                index=index,
                leader=group[0] if group else None,
                request_id=request_id,
                reasoning=budget() if budget is not None else None,
                batch=batch,
            )
            seq.pending = list(prompt)
            group.append(seq)
        with self._cond:
            # Batch sequences hold slots an interactive request may take, and wait
            # behind it: only interactive ones count here.
            free = self.config.parallel - sum(1 for s in list(self._running) if not s.batch)
            ahead = sum(1 for s in self._waiting if not s.batch)
            if not batch and ahead + len(group) > self.config.max_queue + max(free, 0):
                raise Overloaded(
                    "the server is busy: every slot is in use and the queue is full; retry",
                    retry_after=1.0,
                )
            self._waiting.extend(group)
            self._cond.notify()
        return group

    def cancel(self, seqs: list[Sequence]) -> None:
        for seq in seqs:
            seq.cancelled = True
        with self._cond:
            self._cancels = True
            self._cond.notify()

    def stats(self) -> dict[str, int]:
        return {
            "running": len(self._running),
            "waiting": len(self._waiting),
            "slots": self.config.parallel,
            "kv_cells": self.n_ctx,
            "kv_used": self.kv.used,
            "host_cached": len(self.host),
            "host_cache_bytes": self.host.used,
        }

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        # No timeout: freeing the context under a decode still running would crash.
        self._thread.join()
        if self.ctx:
            llama.llama_free(self.ctx)
            self.ctx = None

    # ---- scheduler thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._stopping and not self._running and not self._waiting:
                        self._cond.wait()
                    if self._stopping:
                        break
                self._drop_cancelled()
                self._expire_waiting()
                self._admit()
                if self._running and self.placement.idle_cells():
                    self._flush()  # the last step's tokens do not wait for the copies
                    self.placement.park_idle()
                if self._running:
                    self._step()
                if not self._running:
                    self._flush()
        except BaseException as exc:  # a bug here must not leave clients hanging
            log.exception("scheduler thread crashed")
            # The exception's words stay in the log: they may name files or the prompt.
            self._fail_all(f"engine failure ({type(exc).__name__}); the server log says why")
            self._flush()
            raise
        finally:
            self._fail_all("the server is shutting down")
            self._flush()

    def _emit(self, seq: Sequence, event: GenerationEvent) -> None:
        items = self._outbox.setdefault(seq.loop, [])
        if seq.emitted:
            items.append((seq.events, event))
            return
        # A sequence's first output goes ahead of the others' (see _flush).
        seq.emitted = True
        firsts = self._firsts.get(seq.loop, 0)
        items.insert(firsts, (seq.events, event))
        self._firsts[seq.loop] = firsts + 1

    def _flush(self, wait: bool = False) -> None:
        """Hand the events out to their event loops. With `wait` and first outputs among
        them, wait (at most HANDOFF_WAIT_S) until a loop has taken those: the next decode
        keeps both cores busy, and a loop woken meanwhile waited about a millisecond for
        one, measured here at c=1 (1.2 ms p50 from hand-off to the loop's turn), all of it
        added to the time to first token; with a core to itself it takes them in a
        fraction of that, a wait the decode pays once a request."""
        firsts, self._firsts = self._firsts, {}
        taken = threading.Event() if wait and firsts else None
        for loop, items in self._outbox.items():
            mine = firsts.get(loop, 0)
            _call(loop, _deliver, items, taken if mine else None, mine)
        self._outbox = {}
        if taken is not None:
            taken.wait(HANDOFF_WAIT_S)

    def _drop_cancelled(self) -> None:
        if not self._cancels:  # nothing cancelled since the last look: no scan each step
            return
        with self._cond:
            self._cancels = False
            dropped = [s for s in self._waiting if s.cancelled]
            if dropped:
                self._waiting = deque(s for s in self._waiting if not s.cancelled)
        # A preempted one holds its sampler while it waits.
        for seq in dropped + [s for s in self._running if s.cancelled]:
            self._release(seq)

    def _expire_waiting(self) -> None:
        # A preempted sequence is already streaming: it waits for its turn, never expires;
        # nor do the later choices of a request whose first one is decoding the prompt.
        if not self._waiting:
            return
        deadline = time.monotonic() - self.config.queue_timeout
        with self._cond:
            expired = [
                s
                for s in self._waiting
                if not s.started
                and not s.batch
                and not (s.leader is not None and s.leader.started)
                and s.enqueued_at < deadline
            ]
            if not expired:
                return
            self._waiting = deque(s for s in self._waiting if s not in expired)
        for seq in expired:
            err = QueueTimeout(
                f"no slot became free within {self.config.queue_timeout:g}s; retry later",
                retry_after=1.0,
            )
            _call(seq.loop, _resolve, seq.admitted, err)

    def _ready(self, seq: Sequence) -> bool:
        """A later choice waits until choice 0 has decoded the shared prompt."""
        leader = seq.leader
        if leader is None or leader.done or leader.cancelled:
            return True
        return leader.slot is not None and not leader.pending

    def _admit(self) -> None:
        while self._waiting:  # only the scheduler thread takes from it
            free = [s for s in self.kv.slots if s.seq is None]
            with self._cond:
                if free:
                    seq = next_to_admit(self._waiting, self._ready)
                else:
                    seq = yields_slot(self._running, self._waiting, self._ready)
            if seq is None:
                return
            if not free:
                # An interactive request waits while batch work decodes: the batch
                # sequence steps aside, its cache parked in host memory, and resumes later.
                self._preempt(seq, park=True)
                continue
            slot, keep = self.placement.place(seq.pending, free)
            need = len(seq.pending) - keep + 1
            if not self.placement.room(need, keep=slot) and self._running:
                return  # wait for running sequences to finish
            with self._cond:
                self._waiting.remove(seq)
            slot.seq = seq
            seq.slot = slot
            seq.pending = seq.pending[keep:]
            if not seq.started:
                seq.started = True
                seq.cached_tokens = keep
                seq.text = OutputText(seq.stops)
                if needs_sampler(seq.sampling, seq.grammar):
                    seq.sampler = Sampler(
                        seq.sampling,
                        self.model.n_vocab,
                        self.model.vocab,
                        seq.grammar,
                        self._token_text,
                    )
                elif seq.sampling.logit_bias:
                    seq.bias = Bias.of(seq.sampling.logit_bias, self.model.n_vocab)
                _call(seq.loop, _resolve, seq.admitted, keep)
            self._running.append(seq)

    def _make_room(self) -> None:
        """Ensure every decoding sequence has a cell for its next token."""
        decoding = sum(1 for s in self._running if not s.pending)
        if self.placement.room(decoding + 1):
            return
        while self._running and self.kv.free < decoding + 1:
            self._preempt(loses_cells(self._running))
            decoding = sum(1 for s in self._running if not s.pending)

    def _preempt(self, seq: Sequence, park: bool = False) -> None:
        """Back to the front of the queue with its output so far; `park`: its cells are
        copied to host memory first (where there is room), so resuming it decodes little."""
        slot = seq.slot
        assert slot is not None
        if park:
            self.placement.clear(slot)
        else:
            self.kv.trim(slot, 0)
        slot.seq = None
        seq.slot = None
        seq.pending = seq.prompt + seq.generated
        self._running.remove(seq)
        with self._cond:
            self._waiting.appendleft(seq)
        if park:
            log.debug("batch request %s yielded its slot to an interactive one", seq.request_id)
        else:
            log.info("preempted a sequence to free KV cells; it resumes when space frees up")

    def _step(self) -> None:
        self._make_room()
        batch = self._batch
        outputs = self._fill(batch)
        # The last step's events go out now, while llama_decode runs without the GIL:
        # delivered after it, the event loop's turn would hold the GIL that this thread
        # needs before it can start the next decode.
        self._flush(wait=True)
        if batch.n == 0:
            return
        rc = batch.decode(self.ctx)
        if rc != 0:
            self._decode_failed(rc)
            return
        self._sample(outputs)

    def _fill(self, batch: TokenBatch) -> list[tuple[Sequence, int]]:
        """One token of every decoding sequence, then prompt chunks while room lasts;
        returns which batch rows to sample for which sequence."""
        batch.clear()
        outputs: list[tuple[Sequence, int]] = []
        for seq in self._running:
            if not seq.pending:
                slot = seq.slot
                assert slot is not None
                token = seq.generated[-1]
                outputs.append((seq, batch.add([token], len(slot.tokens), slot.seq_id, True)))
                self.kv.append(slot, [token])
        for seq in self._running:
            if not seq.pending:
                continue
            take = min(len(seq.pending), batch.room, self.kv.free)
            if take <= 0:
                break
            slot = seq.slot
            assert slot is not None
            chunk = seq.pending[:take]
            done = take == len(seq.pending)
            idx = batch.add(chunk, len(slot.tokens), slot.seq_id, done)
            self.kv.append(slot, chunk)
            seq.pending = seq.pending[take:]
            if done:
                outputs.append((seq, idx))
        return outputs

    def _decode_failed(self, rc: int) -> None:
        log.error("llama_decode failed with code %d; ending the sequences in that batch", rc)
        for seq in list(self._running):
            assert seq.slot is not None
            self.kv.trim(seq.slot, 0)
            self._finish(seq, "error", error=f"llama_decode failed (code {rc})")

    def _logits(self, n: int) -> np.ndarray:
        """The last decode's first `n` rows of logits, a view. Views are kept by address:
        making one (a ctypes array type each time) cost more than the argmax over it."""
        ptr = llama.llama_get_logits(self.ctx)
        key = (ctypes.cast(ptr, ctypes.c_void_p).value or 0, n)
        view = self._views.get(key)
        if view is None:
            if len(self._views) >= self.config.batch_size * 4:  # the buffer moved on
                self._views.clear()
            view = self._views[key] = np.ctypeslib.as_array(ptr, shape=(n, self.model.n_vocab))
        return view

    def _row(self, idx: int) -> np.ndarray:
        ptr = llama.llama_get_logits_ith(self.ctx, idx)
        return np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab,))

    def _sample(self, outputs: list[tuple[Sequence, int]]) -> None:
        # Greedy fast path: one argmax over the whole batch's logits, no sampler chain.
        # llama.cpp keeps the rows of the outputs a batch asked for contiguous, in batch
        # order, which is the order of `outputs`.
        # Each pass over a row reads n_vocab floats that another core has just written:
        # a biased row (the common "ban the end token") is read once, by its own argmax.
        greedy = rows = None
        if any(seq.sampler is None for seq, _ in outputs):
            rows = self._logits(len(outputs))
            if any(seq.sampler is None and seq.bias is None for seq, _ in outputs):
                greedy = rows.argmax(axis=1)
        for k, (seq, idx) in enumerate(outputs):
            forced = seq.reasoning.forced() if seq.reasoning is not None else None
            if forced is not None:  # a spent reasoning budget: its closing marker
                token = forced
                if seq.sampler is not None:
                    seq.sampler.accept(token)
            elif seq.sampler is None:
                assert rows is not None
                if seq.bias is not None:
                    token = seq.bias.argmax(rows[k])
                else:
                    assert greedy is not None
                    token = int(greedy[k])
            else:
                began = time.perf_counter()
                token = seq.sampler.sample(self.ctx, idx)
                self._check_pace(seq, time.perf_counter() - began)
            lp = None
            if seq.logprobs is not None and not self.model.is_eog(token):
                lp = token_logprob(self.model, self._row(idx), token, seq.logprobs)
            self._on_token(seq, token, lp)

    def _check_pace(self, seq: Sequence, took: float) -> None:
        """Every other sequence waits while one samples: say which request is slow (a
        grammar that costs more than a decode step), at most once a second for each."""
        if took < SLOW_SAMPLE_S:
            return
        now = time.monotonic()
        if now - seq.slow_warned_at >= 1.0:
            seq.slow_warned_at = now
            log.warning(
                "sampling request %s (choice %d, token %d) took %.0f ms in one step; every "
                "other request on this model waited for it",
                seq.request_id,
                seq.index,
                len(seq.generated),
                took * 1000,
            )

    def _on_token(self, seq: Sequence, token: int, lp: TokenLogprob | None) -> None:
        seq.generated.append(token)
        assert seq.text is not None
        if self.model.is_eog(token):
            # What was held back (a possible stop string's start, part of a character)
            # is text after all.
            self._emit_text(seq, seq.text.flush(), None)
            self._finish(seq, "stop")
            return
        if seq.reasoning is not None:
            seq.reasoning.push(self.model.piece(token, special=True))
        # A reasoning family's markers are written out even when they are control tokens.
        text, stopped = seq.text.push(self.model.piece(token, special=token in self.model.shown))
        if stopped:
            self._emit_text(seq, text, lp)
            self._finish(seq, "stop", stop=seq.text.matched)
            return
        if len(seq.generated) >= seq.max_tokens:
            self._emit_text(seq, text + seq.text.flush(), lp)
            self._finish(seq, "length")
            return
        self._emit_text(seq, text, lp)

    def _emit_text(self, seq: Sequence, text: str, lp: TokenLogprob | None) -> None:
        if lp is not None:
            self._emit(seq, TokenEvent(text, index=seq.index, logprobs=(lp,)))
        elif text:
            self._emit(seq, TokenEvent(text, index=seq.index))

    def _finish(
        self,
        seq: Sequence,
        reason: FinishReason,
        *,
        error: str | None = None,
        stop: str | None = None,
    ) -> None:
        usage = Usage(
            prompt_tokens=len(seq.prompt),
            completion_tokens=len(seq.generated),
            cached_tokens=seq.cached_tokens,
            reasoning_tokens=seq.reasoning.thought if seq.reasoning is not None else 0,
        )
        self._emit(
            seq, Finished(reason=reason, usage=usage, index=seq.index, error=error, stop=stop)
        )
        seq.done = True
        self._release(seq)

    def _release(self, seq: Sequence) -> None:
        slot = seq.slot
        if slot is not None:
            slot.seq = None
            slot.last_used = time.monotonic()
            seq.slot = None
        if seq in self._running:
            self._running.remove(seq)
        if seq.sampler is not None:
            seq.sampler.close()
            seq.sampler = None

    def _fail_all(self, message: str) -> None:
        for seq in list(self._running):
            self._finish(seq, "error", error=message)
        with self._cond:
            waiting, self._waiting = list(self._waiting), deque()
        for seq in waiting:
            if seq.started:
                self._finish(seq, "error", error=message)
            else:
                _call(seq.loop, _resolve, seq.admitted, EngineError(message))
