from dataclasses import asdict

import numpy as np
import pytest
import torch
from scipy import stats

from ase_amden.errors import InvalidArgumentError
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
from ase_amden.training import (
    TimeSampling,
    TrainConfig,
    collate,
    denoising_loss,
    flow_matching_loss,
    objective_loss,
    shortcut_loss,
)
from ase_amden.training.loss import SHORTCUT_STEP_SIZES, drop_properties


def _setup(structures, tiny_model, **card_options):
    torch.manual_seed(0)
    config = DenoiserConfig(n_classes=3, property_names=("g",),
                            energy=card_options.get("energy", False),
                            shortcut=card_options.get("shortcut", False), **tiny_model)
    model = Denoiser(config).double()
    card = ModelCard(name="t", elements=["O", "Si"], model_config=asdict(config),
                     property_names=["g"], property_mean=[30.0], property_std=[5.0],
                     **card_options)
    batch = collate(structures, card.elements, ["g"], [30.0], [5.0]).to("cpu", torch.float64)
    return model, card, batch


def _mean_loss(loss_fn, model, card, batch, seeds=range(8)):
    with torch.no_grad():
        values = [float(loss_fn(model, batch, card, generator=torch.Generator().manual_seed(s))
                        .total) for s in seeds]
    return sum(values) / len(values)


def test_loss_decreases_on_tiny_overfit_problem(make_structures, tiny_model):
    model, card, batch = _setup(make_structures(2), tiny_model)
    before = _mean_loss(denoising_loss, model, card, batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(40):
        optimizer.zero_grad()
        loss = denoising_loss(model, batch, card, generator=torch.Generator().manual_seed(step))
        loss.total.backward()
        optimizer.step()
    after = _mean_loss(denoising_loss, model, card, batch)
    # An untrained net predicts ~nothing: loss ~ 3 + 0.5 * 3 per atom.
    assert 3.0 < before < 9.0
    assert after < 0.8 * before


def test_energy_variant_trains_one_step_with_double_backward(structures, tiny_model):
    model, card, batch = _setup(structures, tiny_model, energy=True)
    loss = denoising_loss(model, batch, card, generator=torch.Generator().manual_seed(0))
    loss.total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # the position term reaches the weights only through d(eps_x)/d(theta) of the autograd score
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_property_dropout_rate():
    mask = torch.ones(20000, 2, dtype=torch.bool)
    kept = drop_properties(mask, 0.2, torch.Generator().manual_seed(0))
    assert abs(float(kept.float().mean()) - 0.8) < 0.01
    assert not drop_properties(~mask, 0.0, torch.Generator()).any()


def test_flow_and_shortcut_losses_backpropagate(structures, tiny_model):
    model, card, batch = _setup(structures, tiny_model, objective="flow", shortcut=True)
    flow = flow_matching_loss(model, batch, card, generator=torch.Generator().manual_seed(0))
    cut = shortcut_loss(model, batch, card, generator=torch.Generator().manual_seed(1))
    (flow.total + cut.total).backward()
    assert torch.isfinite(flow.total) and torch.isfinite(cut.total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # flow targets: |v_x| is a minimum-image displacement, at most half the cell diagonal
    eps_model, eps_card, _ = _setup(structures, tiny_model, shortcut=True)
    cut_eps = shortcut_loss(eps_model, batch, eps_card, generator=torch.Generator().manual_seed(2))
    assert torch.isfinite(cut_eps.total)


@pytest.mark.parametrize("mean, std", [(-1.2, 1.2), (0.0, 0.5)])
def test_lognormal_times_follow_the_truncated_normal_in_log_sigma(mean, std):
    card = ModelCard(name="t", elements=["Si"], model_config={}, sigma_x_max=1.5,
                     t_min=1e-3, t_max=0.999)
    t = TimeSampling("lognormal", mean, std).sample(
        20000, card, torch.Generator().manual_seed(0), torch.zeros(1, dtype=torch.float64))
    assert float(t.min()) >= card.t_min and float(t.max()) <= card.t_max
    log_sigma = np.log(card.sigma_x_max * t.numpy())
    a, b = (np.log(1.5e-3) - mean) / std, (np.log(1.5 * 0.999) - mean) / std
    expected = stats.truncnorm(a, b, loc=mean, scale=std)
    assert stats.kstest(log_sigma, expected.cdf).pvalue > 1e-3
    # and it is not uniform in t
    assert stats.kstest(t.numpy(), stats.uniform(1e-3, 0.998).cdf).pvalue < 1e-6


def test_uniform_times_fill_the_card_range():
    card = ModelCard(name="t", elements=["Si"], model_config={}, t_min=0.2, t_max=0.6)
    t = TimeSampling().sample(20000, card, torch.Generator().manual_seed(1), torch.zeros(1))
    assert stats.kstest(t.numpy(), stats.uniform(0.2, 0.4).cdf).pvalue > 1e-3


def test_edm_weight_gives_the_raw_network_output_unit_weight(structures, tiny_model):
    from ase_amden.models.denoiser import edm_output_scale
    from ase_amden.training.loss import position_loss_weight

    tiny_model = {**tiny_model, "sigma_data": 0.4}
    model, card, batch = _setup(structures, tiny_model)
    t = torch.tensor([0.001, 0.1, 0.5, 1.0], dtype=torch.float64)
    weight = position_loss_weight(t, card)
    torch.testing.assert_close(weight * edm_output_scale(t, 1.5, 0.4).square(),
                               torch.ones_like(t))
    plain = ModelCard(name="t", elements=["O", "Si"], model_config={})
    assert position_loss_weight(t, plain) is None
    # the weighted total trains; the reported position error stays unweighted
    loss = denoising_loss(model, batch, card, generator=torch.Generator().manual_seed(0))
    assert float(loss.total) > float(loss.positions) > 0
    loss.total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def _self_conditioned_counting_calls(structures, tiny_model, shortcut=False):
    """A tiny self-conditioning model, its card and batch, and the list its forward appends
    ``(estimate given, gradient enabled)`` to on every call."""
    torch.manual_seed(0)
    config = DenoiserConfig(n_classes=3, property_names=("g",), self_condition=True,
                            shortcut=shortcut, channel_distances=True, **tiny_model)
    model = Denoiser(config).double()
    card = ModelCard(name="t", elements=["O", "Si"], model_config=asdict(config),
                     property_names=["g"], property_mean=[30.0], property_std=[5.0],
                     shortcut=shortcut)
    batch = collate(structures, card.elements, ["g"], [30.0], [5.0]).to("cpu", torch.float64)
    calls = []
    original = model.forward

    def counting(*args, **kwargs):
        calls.append((kwargs.get("previous_clean") is not None, torch.is_grad_enabled()))
        return original(*args, **kwargs)

    model.forward = counting
    return model, card, batch, calls


def test_self_conditioning_passes_a_first_estimate_on_some_steps(structures, tiny_model):
    """About half the calls run a first pass without gradient and give its clean estimate to
    the second; the gate, in the graph on every step, gets a nonzero gradient only from those."""
    model, card, batch, calls = _self_conditioned_counting_calls(structures, tiny_model)
    used = []
    for seed in range(40):
        model.zero_grad()
        start = len(calls)
        loss = denoising_loss(model, batch, card, generator=torch.Generator().manual_seed(seed))
        loss.total.backward()
        step_calls = [given for given, _ in calls[start:]]
        used.append(step_calls == [False, True])
        assert step_calls in ([False], [False, True])
        assert (float(model.self_gate.grad) != 0.0) == used[-1]
    assert 10 <= sum(used) <= 30


def test_self_conditioning_recycles_chained_passes(structures, tiny_model):
    """With passes = 3 the estimate comes from 1, 2 or 3 chained passes without gradient,
    each after the first given the estimate before it; the trained call gets the last."""
    model, card, batch, calls = _self_conditioned_counting_calls(structures, tiny_model)
    counts = []
    for seed in range(60):
        start = len(calls)
        objective_loss(model, batch, card, generator=torch.Generator().manual_seed(seed),
                       passes=3)
        step_calls = calls[start:]
        assert step_calls[-1][1] and not any(grad for _, grad in step_calls[:-1])
        assert [given for given, _ in step_calls] == [False] + [True] * (len(step_calls) - 1)
        counts.append(len(step_calls) - 1)
    assert set(counts) == {0, 1, 2, 3}
    with pytest.raises(InvalidArgumentError, match="self_condition_passes"):
        TrainConfig(self_condition_passes=0)


def test_shortcut_loss_self_conditions_as_the_sampler_does(structures, tiny_model):
    """The second half step always sees the first half step's clean estimate; on about half
    the steps a first pass without gradient also feeds the first half step and the trained
    full step, and only then does the gate get a gradient."""
    model, card, batch, calls = _self_conditioned_counting_calls(structures, tiny_model,
                                                                 shortcut=True)
    used = []
    for seed in range(40):
        model.zero_grad()
        start = len(calls)
        loss = shortcut_loss(model, batch, card, generator=torch.Generator().manual_seed(seed))
        loss.total.backward()
        assert torch.isfinite(loss.total)
        step_calls = [given for given, _ in calls[start:]]
        assert step_calls in ([False, True, False], [False, True, True, True])
        used.append(len(step_calls) == 4)
        assert (float(model.self_gate.grad) != 0.0) == used[-1]
    assert 10 <= sum(used) <= 30


def test_shortcut_loss_never_asks_the_network_at_an_untrained_step_size(structures, tiny_model):
    """Trained step sizes are 0 (denoising loss) and 2d; the finest teacher steps (d = 1/128)
    ask the network at 0 and still move by d, so every queried size is trained."""
    model, card, batch = _setup(structures, tiny_model, shortcut=True)
    queried, original = [], model.forward

    def recording(*args, **kwargs):
        queried.append(kwargs["step_size"].clone())
        return original(*args, **kwargs)

    model.forward = recording
    trained = {0.0, *(2.0 * d for d in SHORTCUT_STEP_SIZES)}
    finest = []
    for seed in range(30):
        start = len(queried)
        with torch.no_grad():
            shortcut_loss(model, batch, card, generator=torch.Generator().manual_seed(seed))
        teacher_1, teacher_2, trained_call = queried[start:]
        assert torch.equal(teacher_1, teacher_2)
        assert set(trained_call.tolist()) <= trained - {0.0}
        assert set(teacher_1.tolist()) <= trained
        finest += [float(a) for a, b in zip(teacher_1, trained_call, strict=True)
                   if float(b) == 2.0 * SHORTCUT_STEP_SIZES[0]]
    assert finest and set(finest) == {0.0}
