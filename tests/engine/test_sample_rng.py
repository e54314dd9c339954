"""sample_rng seeds torch's CPU generator with sample_seed and restores it afterwards."""

from __future__ import annotations

import torch

from wsss.engine.training import sample_rng, sample_seed


def test_sample_rng_draws_as_the_seeded_generator_and_restores_it() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with sample_rng(7, 2, 5):
        inside = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's stream goes on untouched
    expected = torch.rand(4, generator=torch.Generator().manual_seed(sample_seed(7, 2, 5)))
    assert torch.equal(inside, expected)
    with sample_rng(7, 2, 6):
        assert not torch.equal(torch.rand(4), inside)  # another sample, another draw
