import math

import pytest
import torch

from ase_amden.errors import UnknownNameError
from ase_amden.models.embeddings import PropertyEmbedding, SinusoidalFeatures

DTYPE = torch.float64


def test_sinusoidal_features_hold_raw_value_sine_and_cosine():
    features = SinusoidalFeatures(6, max_frequency=100.0).to(DTYPE)
    x = torch.tensor([0.0, 0.25, 1.0], dtype=DTYPE)
    out = features(x)
    assert out.shape == (3, 7)
    assert torch.equal(out[:, 0], x)
    # Frequencies 1, 10, 100 cycles per unit.
    expected_sin = torch.sin(2 * math.pi * x[:, None] * torch.tensor([1.0, 10.0, 100.0]))
    assert torch.allclose(out[:, 1:4], expected_sin.to(DTYPE), atol=1e-9)
    assert torch.allclose(out[:, 1:4] ** 2 + out[:, 4:] ** 2, torch.ones(3, 3, dtype=DTYPE))


def test_given_properties_are_layer_normed_and_absent_ones_use_the_learned_null():
    torch.manual_seed(0)
    embed = PropertyEmbedding(3, dim=8).to(DTYPE)
    values = torch.tensor([[0.5, float("nan"), -1.0], [2.0, 1.0, float("inf")]], dtype=DTYPE)
    mask = torch.tensor([[True, False, True], [True, True, False]])
    out = embed(values, mask).view(2, 3, 8)
    given = out[mask]
    # Default LayerNorm affine is identity: zero mean, unit (biased) variance.
    assert torch.allclose(given.mean(-1), torch.zeros(4, dtype=DTYPE), atol=1e-12)
    assert torch.allclose(given.var(-1, unbiased=False), torch.ones(4, dtype=DTYPE), atol=1e-4)
    assert torch.equal(out[0, 1], embed.null[1]) and torch.equal(out[1, 2], embed.null[2])
    # Each property has its own map: the same value gives different embeddings.
    same = embed(torch.full((1, 3), 0.7, dtype=DTYPE), torch.ones(1, 3, dtype=torch.bool))
    same = same.view(3, 8)
    assert not torch.allclose(same[0], same[1])
    # NaN/inf in ignored entries must not poison gradients.
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in embed.parameters())


def test_random_null_is_a_fresh_standard_normal_draw():
    embed = PropertyEmbedding(2, dim=8, null_embedding="random").to(DTYPE)
    assert not hasattr(embed, "null")
    values = torch.zeros(4000, 2, dtype=DTYPE)
    mask = torch.zeros(4000, 2, dtype=torch.bool)
    first = embed(values, mask, torch.Generator().manual_seed(5))
    again = embed(values, mask, torch.Generator().manual_seed(5))
    other = embed(values, mask, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.allclose(first, other)
    assert abs(first.mean().item()) < 0.02
    assert first.std().item() == pytest.approx(1.0, abs=0.02)


def test_unknown_null_embedding_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="'learned', 'random'"):
        PropertyEmbedding(1, null_embedding="zeros")
