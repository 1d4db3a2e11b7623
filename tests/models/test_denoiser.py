import json
from dataclasses import asdict

import pytest
import torch

from ase_amden.errors import InvalidStructureError, UnknownNameError
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard, wrap_positions
from ase_amden.models.denoiser import (
    with_angular,
    with_channel_angles,
    with_channel_distances,
    with_layer_angular,
    with_layers,
    with_self_condition,
)
from ase_amden.models.egnn import distance_embedding, radial_basis

DTYPE = torch.float64
TOL = {"rtol": 1e-9, "atol": 1e-11}


#: Network variants every symmetry test runs on: AMDEN's edges, with a radial basis, with
#: the distances between vector channels fed to every layer, and the PaiNN backbone.
VARIANTS = pytest.mark.parametrize(
    "variant", [{}, {"n_radial": 8}, {"channel_distances": True}, {"sigma_data": 0.5},
                {"channel_angles": True, "channel_distances": True},
                {"backbone": "painn", "n_radial": 8}, {"n_radial": 8, "angular_power": 3},
                {"n_radial": 8, "angular_power": 2, "layer_angular": True}],
    ids=["amden-edges", "radial-basis", "channel-distances", "edm", "channel-angles", "painn",
         "angular", "layer-angular"],
)


def _forward(model, positions, elements, cell, t=0.4, **kwargs):
    """One system through ``model`` with autograd on (the energy variant needs it)."""
    system_idx = torch.zeros(len(positions), dtype=torch.long)
    return model(positions, elements, cell[None], system_idx, torch.tensor([t]), **kwargs)


def _run(model, positions, elements, cell, t=0.4, **kwargs):
    with torch.no_grad():
        return _forward(model, positions, elements, cell, t, **kwargs)


def test_config_round_trips_through_the_model_card_as_json():
    config = DenoiserConfig(n_classes=4, property_names=("shear_modulus", "cooling_rate"))
    card = ModelCard(name="toy", elements=["Si", "O", "Li"], model_config=asdict(config))
    restored = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    assert DenoiserConfig(**restored.model_config) == config
    first, second = Denoiser(config), Denoiser(DenoiserConfig(**restored.model_config))
    second.load_state_dict(first.state_dict())  # same architecture, same parameter names


def test_config_errors_name_the_problem():
    with pytest.raises(UnknownNameError, match="null embedding 'zero'"):
        DenoiserConfig(n_classes=2, null_embedding="zero")
    with pytest.raises(ValueError, match="hidden must be positive"):
        DenoiserConfig(n_classes=2, hidden=0)
    with pytest.raises(ValueError, match="n_radial must be 0 or >= 2"):
        DenoiserConfig(n_classes=2, n_radial=1)
    with pytest.raises(UnknownNameError, match="backbone 'mace'"):
        DenoiserConfig(n_classes=2, backbone="mace")
    with pytest.raises(ValueError, match="options of the EGNN backbone, not of 'painn'"):
        DenoiserConfig(n_classes=2, backbone="painn", channel_angles=True)
    for bad in ({"backbone": "painn"}, {"energy": True}, {"n_vector": 1}):
        with pytest.raises(ValueError, match="self_condition needs the EGNN backbone"):
            DenoiserConfig(n_classes=2, self_condition=True, **bad)


def test_edm_preconditioning_scales_the_raw_output_by_c_of_sigma(make_model, random_system,
                                                                  triclinic_cell):
    plain = make_model(0, n_radial=8)
    edm = make_model(0, n_radial=8, sigma_data=0.5)
    edm.load_state_dict(plain.state_dict())  # no new weights: the same raw network F
    positions, elements = random_system(10, triclinic_cell, seed=1)
    for t in (2.0**-6, 0.25, 1.0):  # exact in float32, as the test builds t
        (eps_plain, e_plain), (eps_edm, e_edm) = (
            _run(m, positions, elements, triclinic_cell, t=t) for m in (plain, edm))
        sigma = 1.5 * t
        torch.testing.assert_close(eps_edm, eps_plain * 0.5 / (sigma**2 + 0.25) ** 0.5, **TOL)
        torch.testing.assert_close(e_edm, e_plain, **TOL)


def test_edm_preconditioning_settings_are_checked():
    with pytest.raises(ValueError, match="sigma_data must be positive"):
        DenoiserConfig(n_classes=2, sigma_data=0.0)
    with pytest.raises(ValueError, match="energy variant"):
        DenoiserConfig(n_classes=2, sigma_data=0.5, energy=True)


def test_radial_basis_separates_distances_the_amden_scalar_barely_moves():
    # 2.35 Å (a Si-Si bond) and 2.6 Å (a stretched one), cutoff 5 Å.
    r = torch.tensor([[2.35], [2.6]], dtype=DTYPE)
    scalar = distance_embedding(r**2, 5.0)
    basis = radial_basis(r, 5.0, 16)
    assert basis.shape == (2, 16)
    assert (basis[0] - basis[1]).abs().max() > 3 * (scalar[0] - scalar[1]).abs().max()
    assert basis[0].argmax() == 7 and basis[1].argmax() == 8  # centres every 1/3 Å


def test_untrained_full_size_model_outputs_small_finite_noise(random_system):
    model = Denoiser(DenoiserConfig(n_classes=3)).eval()
    cell = (40 / 0.05) ** (1 / 3) * torch.eye(3, dtype=torch.float32)
    positions, elements = random_system(40, cell.double(), seed=0)
    eps_x, eps_e = _run(model, positions.float(), elements.float(), cell, t=0.7)
    assert eps_x.dtype == torch.float32 and eps_x.shape == (40, 3) and eps_e.shape == (40, 3)
    assert torch.isfinite(eps_x).all() and torch.isfinite(eps_e).all()
    assert 0 < eps_x.abs().max() < 0.1 and 0 < eps_e.abs().max() < 0.5


@VARIANTS
@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "mirror"])
def test_rotation_and_mirror_equivariance(
    make_model, random_system, random_orthogonal, triclinic_cell, proper, variant
):
    model = make_model(**variant)
    positions, elements = random_system(6, triclinic_cell, seed=1)
    q = random_orthogonal(7, proper)
    eps_x, eps_e = _run(model, positions, elements, triclinic_cell)
    assert eps_x.abs().max() > 1e-2  # the check is not vacuous
    rot_x, rot_e = _run(model, positions @ q.T, elements, triclinic_cell @ q.T)
    torch.testing.assert_close(rot_x, eps_x @ q.T, **TOL)
    torch.testing.assert_close(rot_e, eps_e, **TOL)


@VARIANTS
def test_translation_and_wrapping_invariance(make_model, random_system, triclinic_cell, variant):
    model = make_model(**variant)
    positions, elements = random_system(6, triclinic_cell, seed=2)
    eps_x, eps_e = _run(model, positions, elements, triclinic_cell)
    moved = positions + torch.tensor([13.1, -4.7, 2.2], dtype=DTYPE)
    for shifted in (moved, wrap_positions(moved, triclinic_cell[None], torch.zeros(6).long())):
        out_x, out_e = _run(model, shifted, elements, triclinic_cell)
        torch.testing.assert_close(out_x, eps_x, **TOL)
        torch.testing.assert_close(out_e, eps_e, **TOL)


@VARIANTS
def test_permutation_equivariance(make_model, random_system, triclinic_cell, variant):
    model = make_model(**variant)
    positions, elements = random_system(7, triclinic_cell, seed=3)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    eps_x, eps_e = _run(model, positions, elements, triclinic_cell)
    out_x, out_e = _run(model, positions[perm], elements[perm], triclinic_cell)
    torch.testing.assert_close(out_x, eps_x[perm], **TOL)
    torch.testing.assert_close(out_e, eps_e[perm], **TOL)


@VARIANTS
def test_supercell_gives_each_copy_the_outputs_of_its_atom(
    make_model, random_system, triclinic_cell, variant
):
    model = make_model(**variant)
    positions, elements = random_system(5, triclinic_cell, seed=4)
    eps_x, eps_e = _run(model, positions, elements, triclinic_cell)
    supercell = triclinic_cell.clone()
    supercell[0] *= 2
    big_positions = torch.cat([positions, positions + triclinic_cell[0]])
    big_x, big_e = _run(model, big_positions, elements.repeat(2, 1), supercell)
    torch.testing.assert_close(big_x, eps_x.repeat(2, 1), **TOL)
    torch.testing.assert_close(big_e, eps_e.repeat(2, 1), **TOL)


def test_batch_of_two_systems_equals_each_alone(make_model, random_system, triclinic_cell):
    model = make_model(property_names=("a", "b"))
    small_cell = 4.5 * torch.eye(3, dtype=DTYPE)
    first = random_system(5, triclinic_cell, seed=5)
    second = random_system(3, small_cell, seed=6)
    properties = torch.tensor([[0.3, float("nan")], [-1.2, 0.8]], dtype=DTYPE)
    mask = torch.tensor([[True, False], [True, True]])
    t = torch.tensor([0.3, 0.8], dtype=DTYPE)
    system_idx = torch.tensor([0, 1, 0, 0, 1, 0, 1, 0])  # interleaved on purpose
    positions = torch.zeros(8, 3, dtype=DTYPE)
    elements = torch.zeros(8, 3, dtype=DTYPE)
    for b, (pos, el) in enumerate((first, second)):
        positions[system_idx == b], elements[system_idx == b] = pos, el
    cells = torch.stack([triclinic_cell, small_cell])
    with torch.no_grad():
        eps_x, eps_e = model(positions, elements, cells, system_idx, t, properties, mask)
        for b, (pos, el) in enumerate((first, second)):
            alone = model(
                pos,
                el,
                cells[b : b + 1],
                torch.zeros(len(pos)).long(),
                t[b : b + 1],
                properties[b : b + 1],
                mask[b : b + 1],
            )
            torch.testing.assert_close(eps_x[system_idx == b], alone[0], **TOL)
            torch.testing.assert_close(eps_e[system_idx == b], alone[1], **TOL)


@VARIANTS
def test_outputs_are_continuous_when_an_atom_crosses_the_cutoff(make_model, variant):
    model = make_model(scale=0.5, **variant)
    cell = 20.0 * torch.eye(3, dtype=DTYPE)
    elements = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], dtype=DTYPE)

    def outputs(r):
        positions = torch.tensor(
            [[5.0, 5.0, 5.0], [5.0, 8.0, 5.0], [5.0 + r, 5.0, 5.0]], dtype=DTYPE
        )
        return torch.cat([o.flatten() for o in _run(model, positions, elements, cell)])

    # Atom 2 only meets atom 0, at distance r; the cutoff is 6.5 Å.
    assert (outputs(3.0) - outputs(6.6)).abs().max() > 1e-2  # they do interact
    jumps = [(outputs(6.5 - h) - outputs(6.5 + h)).abs().max().item() for h in (1e-3, 1e-4)]
    assert jumps[0] < 1e-4
    assert jumps[1] < jumps[0] / 30  # f_cut ~ (r_c - r)^2: the change falls quadratically


def test_shortcut_model_uses_the_step_size(make_model, random_system, triclinic_cell):
    model = make_model(shortcut=True)
    positions, elements = random_system(4, triclinic_cell, seed=7)
    plain = _run(model, positions, elements, triclinic_cell, step_size=torch.tensor([0.0]))
    jump = _run(model, positions, elements, triclinic_cell, step_size=torch.tensor([0.25]))
    assert not torch.allclose(plain[0], jump[0])
    with pytest.raises(ValueError, match="need step_size"):
        _run(model, positions, elements, triclinic_cell)
    with pytest.raises(ValueError, match="shortcut is False"):
        _run(make_model(), positions, elements, triclinic_cell, step_size=0.25)


def test_random_null_embedding_draws_anew_unless_seeded(make_model, random_system, triclinic_cell):
    model = make_model(property_names=("a",), null_embedding="random")
    positions, elements = random_system(4, triclinic_cell, seed=8)
    draws = [_run(model, positions, elements, triclinic_cell)[1] for _ in range(2)]
    assert not torch.allclose(draws[0], draws[1])
    seeded = [
        _run(
            model, positions, elements, triclinic_cell, generator=torch.Generator().manual_seed(3)
        )[1]
        for _ in range(2)
    ]
    torch.testing.assert_close(seeded[0], seeded[1], rtol=0, atol=0)
    given = torch.tensor([[0.5]], dtype=DTYPE)
    conditioned = [
        _run(model, positions, elements, triclinic_cell, properties=given)[1] for _ in range(2)
    ]
    torch.testing.assert_close(conditioned[0], conditioned[1], rtol=0, atol=0)


def test_time_and_properties_change_the_prediction(make_model, random_system, triclinic_cell):
    model = make_model(property_names=("a",))
    positions, elements = random_system(4, triclinic_cell, seed=9)
    base = _run(model, positions, elements, triclinic_cell, t=0.2)[0]
    later = _run(model, positions, elements, triclinic_cell, t=0.6)[0]
    given = _run(
        model,
        positions,
        elements,
        triclinic_cell,
        t=0.2,
        properties=torch.tensor([[1.0]], dtype=DTYPE),
    )[0]
    assert not torch.allclose(base, later) and not torch.allclose(base, given)


def test_bad_shapes_are_refused_with_the_expected_shape(make_model, triclinic_cell):
    model = make_model()
    positions = torch.zeros(4, 3, dtype=DTYPE)
    with pytest.raises(InvalidStructureError, match=r"\(4, 3\)"):
        _run(model, positions, torch.zeros(4, 2, dtype=DTYPE), triclinic_cell)
    with pytest.raises(ValueError, match="takes no properties"):
        _run(
            model,
            positions,
            torch.zeros(4, 3, dtype=DTYPE),
            triclinic_cell,
            properties=torch.ones(1, 1, dtype=DTYPE),
        )


@pytest.mark.parametrize("channel_distances", [False, True])
def test_channel_distances_let_the_features_see_the_built_geometry(
    make_model, random_system, triclinic_cell, channel_distances
):
    """AMDEN's node features depend on the input distances only, so the first layer's
    coordinate update cannot reach eps_e; with channel distances it does."""
    model = make_model(n_layers=2, channel_distances=channel_distances)
    positions, elements = random_system(6, triclinic_cell, seed=8)
    _, before = _run(model, positions, elements, triclinic_cell)
    with torch.no_grad():
        model.layers[0].coord_out[-1].weight.mul_(3.0)
    _, after = _run(model, positions, elements, triclinic_cell)
    changed = float((after - before).abs().max())
    assert (changed > 1e-7) if channel_distances else (changed == 0.0)


@pytest.mark.parametrize("variant", [{}, {"n_radial": 8}, {"energy": True}],
                         ids=["amden-edges", "radial-basis", "energy"])
def test_a_parent_grown_with_channel_distances_computes_the_parent_function(
    make_model, random_system, triclinic_cell, variant
):
    parent = make_model(n_layers=2, **variant)
    grown = Denoiser(DenoiserConfig(**{**asdict(parent.config), "channel_distances": True}))
    grown = grown.to(DTYPE).eval()
    grown.load_state_dict(with_channel_distances(parent.state_dict(), grown.config))
    positions, elements = random_system(6, triclinic_cell, seed=5)
    expected = _forward(parent, positions, elements, triclinic_cell)
    got = _forward(grown, positions, elements, triclinic_cell)
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b, a, **TOL)
    # and the new edge columns are weights that change the output once trained
    with torch.no_grad():
        grown.layers[0].edge_in.edge.weight[:, -1].normal_(0.0, 0.3)
    _, changed_e = _forward(grown, positions, elements, triclinic_cell)
    assert float((changed_e - expected[1]).abs().max().detach()) > 1e-6


def test_a_parent_grown_with_channel_angles_computes_the_parent_function(
    make_model, random_system, triclinic_cell
):
    parent = make_model(n_layers=3, channel_distances=True)
    grown = Denoiser(DenoiserConfig(**{**asdict(parent.config), "channel_angles": True}))
    grown = grown.to(DTYPE).eval()
    grown.load_state_dict(with_channel_angles(parent.state_dict(), grown.config))
    positions, elements = random_system(6, triclinic_cell, seed=5)
    expected = _run(parent, positions, elements, triclinic_cell)
    got = _run(grown, positions, elements, triclinic_cell)
    for a, b in zip(expected, got, strict=True):
        torch.testing.assert_close(b, a, **TOL)
    with torch.no_grad():  # the new columns read the channel dot products once trained
        grown.layers[1].node_mlp[0].weight[:, -1].normal_(0.0, 0.3)
    _, changed_e = _run(grown, positions, elements, triclinic_cell)
    assert float((changed_e - expected[1]).abs().max()) > 1e-6
    with pytest.raises(ValueError, match="channel_angles=True"):
        with_channel_angles(parent.state_dict(), parent.config)


def test_channel_angles_tell_apart_environments_with_equal_distances(make_model):
    """Two neighbours of a central atom at the same distances, 90 and 180 degrees apart:
    every pair distance around the centre is equal, only the angle differs; the channel
    angles give the centre different invariant features."""
    outputs = {}
    for angle in (90.0, 180.0):
        cell = torch.eye(3, dtype=DTYPE) * 12.0
        theta = torch.tensor(angle * torch.pi / 180.0, dtype=DTYPE)
        centre = torch.tensor([6.0, 6.0, 6.0], dtype=DTYPE)
        a = centre + torch.tensor([2.0, 0.0, 0.0], dtype=DTYPE)
        b = centre + 2.0 * torch.stack([torch.cos(theta), torch.sin(theta), torch.zeros((),
                                                                                      dtype=DTYPE)])
        positions = torch.stack([centre, a, b])
        elements = torch.zeros(3, 3, dtype=DTYPE)
        for angles in (False, True):
            model = make_model(1, n_layers=2, channel_angles=angles, cutoff=2.5)
            _, eps_e = _run(model, positions, elements, cell)
            outputs[angle, angles] = eps_e[0]
    # a-b (2.83 and 4 Å) is beyond the 2.5 Å cutoff at both angles: no edge sees it
    torch.testing.assert_close(outputs[90.0, False], outputs[180.0, False], **TOL)
    assert float((outputs[90.0, True] - outputs[180.0, True]).abs().max()) > 1e-6


def test_painn_tells_apart_environments_with_equal_distances(make_model):
    """The environments of the channel-angle test (two neighbours at 2 Å, 90 or 180
    degrees apart, their own distance beyond the cutoff): PaiNN's scalar products of
    vector features see the angle in the invariant features, and the output vector of the
    centre (zero by symmetry at 180 degrees) points between the neighbours at 90."""
    model = make_model(1, n_layers=2, backbone="painn", n_radial=4, cutoff=2.5)
    outputs = {}
    for angle in (90.0, 180.0):
        theta = torch.tensor(angle * torch.pi / 180.0, dtype=DTYPE)
        centre = torch.tensor([6.0, 6.0, 6.0], dtype=DTYPE)
        a = centre + torch.tensor([2.0, 0.0, 0.0], dtype=DTYPE)
        b = centre + 2.0 * torch.stack([torch.cos(theta), torch.sin(theta),
                                        torch.zeros((), dtype=DTYPE)])
        positions = torch.stack([centre, a, b])
        outputs[angle] = _run(model, positions, torch.zeros(3, 3, dtype=DTYPE),
                              torch.eye(3, dtype=DTYPE) * 12.0)
    assert float((outputs[90.0][1][0] - outputs[180.0][1][0]).abs().max()) > 1e-6
    torch.testing.assert_close(outputs[180.0][0][0], torch.zeros(3, dtype=DTYPE), **TOL)
    eps_x = outputs[90.0][0][0]
    assert float(eps_x.norm()) > 1e-6
    torch.testing.assert_close(eps_x[0], eps_x[1], **TOL)  # along the bisector (1, 1, 0)
    assert abs(float(eps_x[2])) < 1e-12


def test_growing_needs_channel_distances_on(make_model):
    parent = make_model()
    with pytest.raises(ValueError, match="channel_distances=True"):
        with_channel_distances(parent.state_dict(), parent.config)


def test_gaussian_basis_conditioning_reaches_every_layer_and_keeps_equivariance(
    make_model, random_system, random_orthogonal, triclinic_cell
):
    model = make_model(property_names=("cooling_rate",), property_basis=6)
    assert len(model.layer_conditions) == model.config.n_layers
    positions, elements = random_system(6, triclinic_cell, seed=3)
    q = random_orthogonal(5, True)
    outputs = {}
    for rate in (-1.0, 0.0, 1.5):
        given = torch.tensor([[rate]], dtype=DTYPE)
        eps_x, eps_e = _run(model, positions, elements, triclinic_cell, properties=given)
        rot_x, rot_e = _run(model, positions @ q.T, elements, triclinic_cell @ q.T,
                            properties=given)
        torch.testing.assert_close(rot_x, eps_x @ q.T, **TOL)
        torch.testing.assert_close(rot_e, eps_e, **TOL)
        outputs[rate] = eps_x
    assert not torch.allclose(outputs[-1.0], outputs[0.0])
    assert not torch.allclose(outputs[0.0], outputs[1.5])
    # The per-layer path matters: silencing it changes the prediction.
    with torch.no_grad():
        for layer in model.layer_conditions:
            layer.weight.zero_()
            layer.bias.zero_()
    silenced = _run(model, positions, elements, triclinic_cell,
                    properties=torch.tensor([[1.5]], dtype=DTYPE))[0]
    assert not torch.allclose(silenced, outputs[1.5])


def test_property_basis_must_be_zero_or_at_least_two():
    with pytest.raises(ValueError, match="property_basis"):
        DenoiserConfig(n_classes=2, property_basis=1)


def _self_conditioned(make_model, gate: float, **config):
    model = make_model(3, self_condition=True, channel_distances=True, **config)
    with torch.no_grad():
        model.self_gate.fill_(gate)
    return model


def test_self_conditioning_grown_from_a_parent_computes_the_parent_function(
        make_model, random_system, triclinic_cell):
    parent = make_model(3, channel_distances=True)
    grown = make_model(0, channel_distances=True, self_condition=True)
    grown.load_state_dict(with_self_condition(parent.state_dict(), grown.config))
    assert float(grown.self_gate.detach()) == 0.0
    positions, elements = random_system(6, triclinic_cell, seed=4)
    expected = _run(parent, positions, elements, triclinic_cell)
    estimate = positions + 0.3 * torch.randn(positions.shape, dtype=DTYPE,
                                             generator=torch.Generator().manual_seed(1))
    for previous in (None, estimate):
        out = _run(grown, positions, elements, triclinic_cell, previous_clean=previous)
        torch.testing.assert_close(out[0], expected[0], **TOL)
    with pytest.raises(ValueError, match="self_condition=True"):
        with_self_condition(parent.state_dict(), parent.config)
    with pytest.raises(ValueError, match="not trained with self-conditioning"):
        _run(parent, positions, elements, triclinic_cell, previous_clean=estimate)


@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "mirror"])
def test_self_conditioning_is_used_equivariantly_and_periodically(
        make_model, random_system, random_orthogonal, triclinic_cell, proper):
    model = _self_conditioned(make_model, 0.7)
    positions, elements = random_system(6, triclinic_cell, seed=5)
    estimate = positions + 0.3 * torch.randn(positions.shape, dtype=DTYPE,
                                             generator=torch.Generator().manual_seed(2))
    plain, _ = _run(model, positions, elements, triclinic_cell)
    eps_x, eps_e = _run(model, positions, elements, triclinic_cell, previous_clean=estimate)
    assert float((eps_x - plain).abs().max()) > 1e-3  # the estimate is used
    q = random_orthogonal(8, proper)
    rot_x, rot_e = _run(model, positions @ q.T, elements, triclinic_cell @ q.T,
                        previous_clean=estimate @ q.T)
    torch.testing.assert_close(rot_x, eps_x @ q.T, **TOL)
    torch.testing.assert_close(rot_e, eps_e, **TOL)
    # an estimate given as another periodic image of the same positions is the same estimate
    image = estimate + torch.tensor([1.0, -2.0, 1.0], dtype=DTYPE) @ triclinic_cell
    moved_x, _ = _run(model, positions, elements, triclinic_cell, previous_clean=image)
    torch.testing.assert_close(moved_x, eps_x, **TOL)


def test_a_parent_grown_with_angular_moments_computes_the_parent_function(
        make_model, random_system, triclinic_cell):
    parent = make_model(3, n_radial=8, channel_distances=True, self_condition=True)
    grown = Denoiser(DenoiserConfig(**{**asdict(parent.config), "angular_power": 3}))
    grown = grown.to(DTYPE).eval()
    grown.load_state_dict(with_angular(parent.state_dict(), grown.config))
    positions, elements = random_system(6, triclinic_cell, seed=5)
    estimate = positions + 0.3 * torch.randn(positions.shape, dtype=DTYPE,
                                             generator=torch.Generator().manual_seed(1))
    for previous in (None, estimate):
        expected = _run(parent, positions, elements, triclinic_cell, previous_clean=previous)
        got = _run(grown, positions, elements, triclinic_cell, previous_clean=previous)
        for a, b in zip(expected, got, strict=True):
            torch.testing.assert_close(b, a, **TOL)
    with torch.no_grad():  # the zero map reads the moments of both geometries once trained
        grown.angular_embed[-1].weight.normal_(0.0, 0.3)
    plain = _run(grown, positions, elements, triclinic_cell)
    conditioned = _run(grown, positions, elements, triclinic_cell, previous_clean=estimate)
    assert float((plain[1] - expected[1]).abs().max()) > 1e-6
    assert float((conditioned[1] - plain[1]).abs().max()) > 1e-6
    with pytest.raises(ValueError, match="angular_power >= 1"):
        with_angular(parent.state_dict(), parent.config)


def test_a_parent_grown_with_layer_moments_computes_the_parent_function(
        make_model, random_system, triclinic_cell):
    parent = make_model(3, n_radial=8, channel_distances=True, angular_power=2)
    grown = Denoiser(DenoiserConfig(**{**asdict(parent.config), "layer_angular": True}))
    grown = grown.to(DTYPE).eval()
    grown.load_state_dict(with_layer_angular(parent.state_dict(), grown.config))
    positions, elements = random_system(6, triclinic_cell, seed=5)
    expected = _run(parent, positions, elements, triclinic_cell)
    for a, b in zip(expected, _run(grown, positions, elements, triclinic_cell), strict=True):
        torch.testing.assert_close(b, a, **TOL)
    with torch.no_grad():  # the zero map of the last layer reads the built geometry once trained
        grown.layers[-1].moment_out[-1].weight.normal_(0.0, 0.3)
    assert float((_run(grown, positions, elements, triclinic_cell)[1]
                  - expected[1]).abs().max()) > 1e-6
    with pytest.raises(ValueError, match="layer_angular=True"):
        with_layer_angular(parent.state_dict(), parent.config)
    with pytest.raises(ValueError, match="layer_angular needs"):
        DenoiserConfig(n_classes=1, n_radial=4, layer_angular=True)


def test_a_parent_grown_deeper_computes_the_parent_function(
        make_model, random_system, triclinic_cell):
    parent = make_model(3, n_radial=8, channel_distances=True, channel_angles=True,
                        self_condition=True, property_names=("cooling_rate",),
                        property_basis=4)
    grown = Denoiser(DenoiserConfig(**{**asdict(parent.config),
                                       "n_layers": parent.config.n_layers + 2}))
    grown = grown.to(DTYPE).eval()
    grown.load_state_dict(with_layers(parent.state_dict(), grown.config))
    positions, elements = random_system(6, triclinic_cell, seed=5)
    estimate = positions + 0.3 * torch.randn(positions.shape, dtype=DTYPE,
                                             generator=torch.Generator().manual_seed(1))
    properties = torch.tensor([[2.0]], dtype=DTYPE)
    for previous in (None, estimate):
        expected = _run(parent, positions, elements, triclinic_cell, previous_clean=previous,
                        properties=properties)
        got = _run(grown, positions, elements, triclinic_cell, previous_clean=previous,
                   properties=properties)
        for a, b in zip(expected, got, strict=True):
            torch.testing.assert_close(b, a, **TOL)
    with torch.no_grad():  # the new last layer moves the geometry once trained
        grown.layers[-1].coord_out[-1].weight.normal_(0.0, 0.3)
    moved = _run(grown, positions, elements, triclinic_cell, properties=properties)
    assert float((moved[0] - _run(parent, positions, elements, triclinic_cell,
                                  properties=properties)[0]).abs().max()) > 1e-6
    with pytest.raises(ValueError, match="more than the parent's"):
        with_layers(parent.state_dict(), parent.config)


def test_angular_moments_need_the_radial_basis():
    with pytest.raises(ValueError, match="n_radial >= 2"):
        DenoiserConfig(n_classes=1, angular_power=2)
    with pytest.raises(ValueError, match="angular_power must be >= 0"):
        DenoiserConfig(n_classes=1, n_radial=4, angular_power=-1)


def test_clean_estimate_removes_the_predicted_noise(make_model):
    model = _self_conditioned(make_model, 0.0, sigma_x_max=1.5)
    positions = torch.zeros(3, 3, dtype=DTYPE)
    eps = torch.ones(3, 3, dtype=DTYPE)
    system_idx = torch.tensor([0, 0, 1])
    clean = model.clean_estimate(positions, eps, system_idx, torch.tensor([0.2, 0.4],
                                                                         dtype=DTYPE))
    torch.testing.assert_close(clean[:, 0], torch.tensor([-0.3, -0.3, -0.6], dtype=DTYPE))
