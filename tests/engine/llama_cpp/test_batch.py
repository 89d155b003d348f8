"""TokenBatch: runs of sequences' tokens written into numpy buffers that llama.cpp reads."""

from __future__ import annotations

import numpy as np

from hearth.engine.llama_cpp.batch import TokenBatch
from tests.engine.llama_cpp.conftest import Context

PROMPT_A = list(range(300, 340))
PROMPT_B = list(range(900, 917))


def test_add_writes_one_run_and_returns_the_index_of_its_last_token() -> None:
    batch = TokenBatch(8)
    assert batch.add([5, 6, 7], start_pos=10, seq_id=2, want_last=True) == 2
    assert batch.add([9], start_pos=0, seq_id=1, want_last=False) == 3
    assert batch.n == 4 and batch.room == 4
    assert batch.tokens[:4].tolist() == [5, 6, 7, 9]
    assert batch.pos[:4].tolist() == [10, 11, 12, 0]
    assert batch.seq_ids[:4].tolist() == [2, 2, 2, 1]
    assert batch.logits[:4].tolist() == [0, 0, 1, 0]  # only the wanted last token's


def test_a_cleared_batch_forgets_which_logits_were_wanted() -> None:
    batch = TokenBatch(4)
    batch.add([1, 2], 0, 0, want_last=True)
    batch.clear()
    assert batch.n == 0 and batch.room == 4
    batch.add([1, 2, 3], 0, 0, want_last=False)
    assert batch.logits[:3].tolist() == [0, 0, 0]


def test_the_llama_batch_struct_reads_what_add_wrote() -> None:
    batch = TokenBatch(6)
    batch.add([11, 12], 4, 3, want_last=True)
    batch.add([13, 14, 15], 0, 1, want_last=True)
    s = batch.struct
    assert [s.token[i] for i in range(5)] == [11, 12, 13, 14, 15]
    assert [s.pos[i] for i in range(5)] == [4, 5, 0, 1, 2]
    assert [s.n_seq_id[i] for i in range(5)] == [1] * 5
    assert [s.seq_id[i][0] for i in range(5)] == [3, 3, 1, 1, 1]
    assert [s.logits[i] for i in range(5)] == [0, 1, 0, 0, 1]


def test_runs_of_two_sequences_decode_as_if_each_were_alone(ctx: Context) -> None:
    alone_a = ctx.decode(0, PROMPT_A, 0)
    alone_b = ctx.decode(1, PROMPT_B, 0)
    batch = ctx.batch
    batch.clear()
    last_a = batch.add(PROMPT_A, 0, 2, want_last=True)
    last_b = batch.add(PROMPT_B, 0, 3, want_last=True)
    assert batch.decode(ctx.ptr) == 0
    assert ctx.pos_max(2) == len(PROMPT_A) - 1 and ctx.pos_max(3) == len(PROMPT_B) - 1
    # Had a token landed in the other sequence, attention would mix the two prompts.
    np.testing.assert_allclose(ctx.logits(last_a), alone_a, atol=1e-3)
    np.testing.assert_allclose(ctx.logits(last_b), alone_b, atol=1e-3)


def test_decode_sends_only_the_tokens_added_since_the_last_clear(ctx: Context) -> None:
    ctx.decode(0, PROMPT_A, 0)
    ctx.decode(1, PROMPT_B, 0)
    step = ctx.decode(0, [PROMPT_B[0]], len(PROMPT_A))  # one token, after a longer run
    assert ctx.pos_max(0) == len(PROMPT_A) and ctx.pos_max(1) == len(PROMPT_B) - 1
    fresh = ctx.decode(2, [*PROMPT_A, PROMPT_B[0]], 0)
    np.testing.assert_allclose(step, fresh, atol=1e-3)
