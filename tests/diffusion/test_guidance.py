import pytest
import torch

from ase_amden.diffusion import GuidedDenoiser, combine_guidance
from ase_amden.models import Denoiser, DenoiserConfig

F64 = torch.float64


@pytest.fixture
def model():
    torch.manual_seed(0)
    config = DenoiserConfig(n_classes=3, property_names=("a", "b"), hidden=16, n_layers=1,
                            n_vector=2, cutoff=3.0)
    return Denoiser(config).double().eval()


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    cell = torch.stack([5.0 * torch.eye(3), 6.0 * torch.eye(3)]).double()
    system_idx = torch.tensor([0] * 6 + [1] * 7)
    positions = torch.rand(13, 3, generator=g, dtype=F64) * 5
    elements = torch.randn(13, 3, generator=g, dtype=F64)
    t = torch.tensor([0.3, 0.6], dtype=F64)
    properties = torch.tensor([[1.0, -0.5], [0.2, 0.0]], dtype=F64)
    mask = torch.tensor([[True, True], [True, False]])
    return positions, elements, cell, system_idx, t, properties, mask


def test_combine_guidance_formula():
    cond, uncond = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.0])
    assert torch.equal(combine_guidance(cond, uncond, 0.0), cond)
    assert torch.allclose(combine_guidance(cond, uncond, 1.5), 2.5 * cond - 1.5 * uncond)


def test_zero_guidance_is_the_conditional_call(model, batch):
    positions, elements, cell, system_idx, t, properties, mask = batch
    with torch.no_grad():
        expected = model(positions, elements, cell, system_idx, t, properties, mask)
        got = GuidedDenoiser(model, properties, mask, 0.0)(positions, elements, cell,
                                                           system_idx, t)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_doubled_batch_equals_two_separate_calls(model, batch):
    positions, elements, cell, system_idx, t, properties, mask = batch
    w = 1.5
    with torch.no_grad():
        cond = model(positions, elements, cell, system_idx, t, properties, mask)
        uncond = model(positions, elements, cell, system_idx, t, properties,
                       torch.zeros_like(mask))
        got = GuidedDenoiser(model, properties, mask, w)(positions, elements, cell,
                                                         system_idx, t)
    assert not torch.allclose(cond[0], uncond[0])  # the targets matter
    for i in range(2):
        assert torch.allclose(got[i], (1 + w) * cond[i] - w * uncond[i], atol=1e-10)


class Recorder(torch.nn.Module):
    """Stand-in with the Denoiser signature that records what it is called with."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones((), dtype=F64))
        self.calls = []

    def forward(self, positions, elements, cell, system_idx, t, properties=None,
                property_mask=None, step_size=None):
        self.calls.append({"n_systems": cell.shape[0], "step_size": step_size,
                           "mask": None if property_mask is None else property_mask.clone()})
        return self.scale * positions, self.scale * elements


def test_no_targets_means_one_plain_call(batch):
    positions, elements, cell, system_idx, t, _, _ = batch
    recorder = Recorder()
    mask = torch.zeros(2, 2, dtype=torch.bool)
    GuidedDenoiser(recorder, torch.zeros(2, 2, dtype=F64), mask, 2.0)(
        positions, elements, cell, system_idx, t)
    assert len(recorder.calls) == 1 and recorder.calls[0]["n_systems"] == 2


def test_guided_call_doubles_the_batch_with_a_null_half(batch):
    positions, elements, cell, system_idx, t, properties, mask = batch
    recorder = Recorder()
    GuidedDenoiser(recorder, properties, mask, 1.0)(positions, elements, cell, system_idx, t)
    (call,) = recorder.calls
    assert call["n_systems"] == 4
    assert torch.equal(call["mask"], torch.cat([mask, torch.zeros_like(mask)]))


@pytest.mark.parametrize("shortcut", [False, True])
def test_step_size_only_for_shortcut_models(batch, shortcut):
    positions, elements, cell, system_idx, t, _, _ = batch
    recorder = Recorder()
    denoise = GuidedDenoiser(recorder, shortcut=shortcut)
    denoise(positions, elements, cell, system_idx, t)
    denoise(positions, elements, cell, system_idx, t, step_size=torch.full_like(t, 0.25))
    first, second = (c["step_size"] for c in recorder.calls)
    if shortcut:
        assert torch.equal(first, torch.zeros_like(t))
        assert torch.equal(second, torch.full_like(t, 0.25))
    else:
        assert first is None and second is None


def test_negative_guidance_is_refused(model):
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        GuidedDenoiser(model, guidance=-1.0)



@pytest.mark.parametrize("w", [0.0, 1.5], ids=["plain", "guided"])
def test_self_conditioning_model_gets_its_previous_clean_estimate(batch, w):
    positions, elements, cell, system_idx, t, properties, mask = batch
    torch.manual_seed(0)
    config = DenoiserConfig(n_classes=3, property_names=("a", "b"), hidden=16, n_layers=1,
                            n_vector=2, cutoff=3.0, channel_distances=True, self_condition=True)
    model = Denoiser(config).double().eval()
    with torch.no_grad():
        model.self_gate.fill_(1.0)
        for parameter in model.layers[0].coord_out.parameters():
            parameter.normal_(0.0, 0.3)
        denoise = GuidedDenoiser(model, properties, mask, w)
        first = denoise(positions, elements, cell, system_idx, t)
        estimate = positions - 1.5 * t[system_idx].unsqueeze(-1) * first[0]
        torch.testing.assert_close(denoise.previous_clean, estimate)
        moved = positions + 0.05
        second = denoise(moved, elements, cell, system_idx, t)
        alone = GuidedDenoiser(model, properties, mask, w)(moved, elements, cell, system_idx, t)
        given = GuidedDenoiser(model, properties, mask, w)
        given.previous_clean = estimate
        expected = given(moved, elements, cell, system_idx, t)
    assert float((second[0] - alone[0]).abs().max()) > 1e-4  # the estimate reached the network
    torch.testing.assert_close(second[0], expected[0])
