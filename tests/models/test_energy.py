import pytest
import torch

from ase_amden.errors import AmdenError

DTYPE = torch.float64


@pytest.fixture(params=["egnn", "painn"])
def energy_model(make_model, request):
    """A small energy model on each backbone."""
    radial = {"n_radial": 4} if request.param == "painn" else {}
    return make_model(energy=True, property_names=("a",), sigma_x_max=1.7, n_norm=4.0,
                      backbone=request.param, **radial)


@pytest.fixture
def system(random_system, triclinic_cell):
    positions, elements = random_system(5, triclinic_cell, seed=11)
    return positions, elements, triclinic_cell[None], torch.zeros(5, dtype=torch.long)


def test_eps_x_is_sigma_times_the_finite_difference_gradient(energy_model, system):
    positions, elements, cell, system_idx = system
    t = torch.tensor([0.35], dtype=DTYPE)
    properties = torch.tensor([[0.4]], dtype=DTYPE)
    eps_x, _ = energy_model(positions, elements, cell, system_idx, t, properties)
    sigma = 1.7 * 0.35
    h = 1e-5
    numeric = torch.zeros_like(positions)
    with torch.no_grad():
        for i in range(5):
            for a in range(3):
                step = torch.zeros_like(positions)
                step[i, a] = h
                plus = energy_model.energy(
                    positions + step, elements, cell, system_idx, t, properties
                )
                minus = energy_model.energy(
                    positions - step, elements, cell, system_idx, t, properties
                )
                numeric[i, a] = (plus - minus).item() / (2 * h)
    assert eps_x.abs().max() > 1e-2
    torch.testing.assert_close(eps_x, sigma * numeric, rtol=1e-6, atol=1e-8)


def test_energy_is_invariant_and_eps_x_equivariant(energy_model, system, random_orthogonal):
    positions, elements, cell, system_idx = system
    q = random_orthogonal(3, proper=False)
    t = torch.tensor([0.5], dtype=DTYPE)
    energy = energy_model.energy(positions, elements, cell, system_idx, t)
    rotated = energy_model.energy(positions @ q.T + 2.0, elements, cell @ q.T, system_idx, t)
    torch.testing.assert_close(rotated, energy, rtol=1e-10, atol=1e-12)
    eps_x, _ = energy_model(positions, elements, cell, system_idx, t)
    rot_x, _ = energy_model(positions @ q.T, elements, cell @ q.T, system_idx, t)
    torch.testing.assert_close(rot_x, eps_x @ q.T, rtol=1e-9, atol=1e-11)


def test_training_backpropagates_through_the_gradient(energy_model, system):
    positions, elements, cell, system_idx = system
    energy_model.train()
    properties = torch.tensor([[0.4]], dtype=DTYPE)
    # One property absent, one given: two systems so both the null and the map get gradients.
    both = torch.cat([positions, positions + 0.1])
    eps_x, eps_e = energy_model(
        both,
        elements.repeat(2, 1),
        cell.repeat(2, 1, 1),
        torch.cat([system_idx, system_idx + 1]),
        torch.tensor([0.3, 0.6], dtype=DTYPE),
        properties.repeat(2, 1),
        torch.tensor([[True], [False]]),
    )
    assert eps_x.requires_grad
    loss = (eps_x - 1.0).square().mean() + 0.5 * (eps_e - 1.0).square().mean()
    loss.backward()
    for name, parameter in energy_model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert energy_model.gamma.grad.abs() > 0


def test_inference_outputs_are_detached_and_finite_at_t_zero(energy_model, system):
    positions, elements, cell, system_idx = system
    with torch.no_grad():
        eps_x, eps_e = energy_model(positions, elements, cell, system_idx, 0.0)
        assert torch.isinf(energy_model.energy(positions, elements, cell, system_idx, 0.0)).all()
    assert not eps_x.requires_grad and not eps_e.requires_grad
    assert torch.isfinite(eps_x).all() and eps_x.abs().max() > 0


def test_energy_is_refused_by_a_standard_model(make_model, system):
    with pytest.raises(AmdenError, match="energy=True"):
        make_model().energy(*system, 0.5)


def test_energy_and_its_gradient_are_continuous_at_the_cutoff(energy_model):
    cell = 20.0 * torch.eye(3, dtype=DTYPE)[None]
    elements = torch.eye(3, dtype=DTYPE)
    system_idx = torch.zeros(3, dtype=torch.long)

    def outputs(r):
        positions = torch.tensor(
            [[5.0, 5.0, 5.0], [5.0, 8.0, 5.0], [5.0 + r, 5.0, 5.0]], dtype=DTYPE
        )
        energy = energy_model.energy(positions, elements, cell, system_idx, 0.4)
        eps_x, _ = energy_model(positions, elements, cell, system_idx, 0.4)
        return torch.cat([energy.detach(), eps_x.detach().flatten()])

    # Atom 2 meets atom 0 at distance r (cutoff 6.5 Å) and nothing else beyond r = 3.5 Å.
    assert (outputs(3.0) - outputs(6.6)).abs().max() > 1e-3
    jumps = [(outputs(6.5 - h) - outputs(6.5 + h)).abs().max().item() for h in (1e-3, 1e-4)]
    assert jumps[0] < 1e-4 and jumps[1] < jumps[0] / 5
