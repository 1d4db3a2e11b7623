"""Smoke runs of the hand-run benchmarks in --quick mode on tiny untrained models."""

import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms

from ase_amden.data import AmorphousDataset, held_out
from ase_amden.errors import AmdenError
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
from ase_amden.potentials import get_calculator
from ase_amden.training import save_checkpoint

ROOT = Path(__file__).parents[1]
LENGTH = 10.2  # Å: RDF to 5 Å needs cells at least 10 Å wide


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def tiny_checkpoint(path, name, elements, *, properties=(), energy=False, rho_max=None,
                    shortcut=False, **network):
    config = DenoiserConfig(n_classes=len(elements) + 1, property_names=tuple(properties),
                            hidden=8, n_layers=1, n_vector=2, cutoff=3.0, time_dim=4,
                            property_dim=4, energy=energy, shortcut=shortcut, **network)
    torch.manual_seed(0)
    model = Denoiser(config).double()
    if config.self_condition:  # an open gate, so that the estimate changes the output
        with torch.no_grad():
            model.self_gate.fill_(1.0)
    card = ModelCard(
        name=name, elements=list(elements), model_config=asdict(config), rho_max=rho_max,
        property_names=list(properties), property_units=["GPa", "Si atoms"][: len(properties)],
        property_mean=[25.0, 5.5][: len(properties)], property_std=[3.0, 0.3][: len(properties)],
        energy=energy, shortcut=shortcut,
        training={"default_n_atoms": 24, "default_number_density": 0.025},
    )
    return save_checkpoint(path, model, card)


def random_structures(formula_counts, count, seed):
    """Random structures in a LENGTH cube with no pair closer than 2 Å."""
    rng = np.random.default_rng(seed)
    symbols = [s for s, n in formula_counts.items() for _ in range(n)]
    images = []
    while len(images) < count:
        atoms = Atoms(symbols, cell=[LENGTH] * 3, pbc=True)
        atoms.set_scaled_positions(rng.random((len(atoms), 3)))
        d = atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)]
        if d.min() > 2.0:
            images.append(atoms)
    return images


def write_dataset(path, images, extra):
    indices = [i for i in range(200) if held_out(i)][:2] + [i for i in range(200)
                                                            if not held_out(i)][:2]
    for k, atoms in enumerate(images):
        atoms.info.update({"relaxed_energy": -4.0 + 0.01 * k, "wall_time": 100.0 + k,
                           **{name: v + 0.5 * k for name, v in extra.items()}})
    return AmorphousDataset.write(path, images, indices=indices[: len(images)],
                                  units={"shear_modulus": "GPa", "wall_time": "s"})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    return {
        "si": tiny_checkpoint(folder / "si.pt", "tiny-Si", ["Si"]),
        "sio2": tiny_checkpoint(folder / "sio2.pt", "tiny-SiO2", ["Si", "O"],
                                properties=("shear_modulus", "ring_size"), rho_max=0.025),
        "energy": tiny_checkpoint(folder / "e.pt", "tiny-Si-energy", ["Si"], energy=True),
        "si_data": write_dataset(folder / "si.h5", random_structures({"Si": 20}, 4, 0), {}).path,
        "sio2_data": write_dataset(
            folder / "sio2.h5", random_structures({"Si": 6, "O": 12}, 4, 1),
            {"shear_modulus": 24.0, "ring_size": 5.3}).path,
    }


@pytest.fixture(autouse=True)
def importable(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    yield
    sys.modules.pop("benchmarks", None)


def test_generation_quality(files, tmp_path):
    from benchmarks import generation_quality

    data = generation_quality.main([
        "--checkpoint", str(files["si"]), "--reference", files["si_data"],
        "--checkpoint", str(files["sio2"]), "--reference", files["sio2_data"],
        "--quick", "--quiet", "--out", str(tmp_path),
    ])
    for name in ("tiny-Si", "tiny-SiO2"):
        assert (tmp_path / f"generation_quality_{name}.json").exists()
    assert set(data["models"]) == {"tiny-Si", "tiny-SiO2"}
    for name, result in data["models"].items():
        assert result["reference_split"] == "test"
        assert result["n_generated"] == 2
        for key in ("rdf_rmsd", "rdf_rmsd_floor", "adf_rmsd", "overlap"):
            assert finite(result[key]), (name, key)
        assert 0.0 <= result["overlap"] <= 1.0
        energy = result["relaxed_energy"]
        assert finite(energy["gap"])
        assert energy["gap"] == pytest.approx(
            energy["generated"]["mean"] - energy["reference"]["mean"])
        assert finite(result["generated"]["coordination"])
        assert result["time_per_structure_s"]["mean"] > 0
        assert Path(result["png"]).stat().st_size > 0
    assert data["models"]["tiny-Si"]["potential"] == "sw-si"
    silica = data["models"]["tiny-SiO2"]
    assert silica["potential"] == "tersoff-sio2"
    assert 0.0 <= silica["charge_balance_rate"] <= 1.0
    assert silica["charge_balance_n"] == 2 + 2 * 2 * 1  # references + 2 properties x 2 targets
    assert set(silica["target_sweep"]) == {"shear_modulus", "ring_size"}
    targets = [row["target"] for row in silica["target_sweep"]["shear_modulus"]["targets"]]
    assert targets == pytest.approx([24.0, 25.5])  # the reference range, end to end
    assert "charge_balance_rate" not in data["models"]["tiny-Si"]


def test_generation_speed(files, tmp_path):
    from benchmarks import generation_speed

    data = generation_speed.main(["--checkpoint", str(files["si"]), "--quick", "--quiet",
                                  "--out", str(tmp_path)])
    assert (tmp_path / "generation_speed.json").exists()
    batch = data["batch"]
    for key in ("batch_1_s_per_structure", "batched_s_per_structure", "speedup"):
        assert finite(batch[key]) and batch[key] > 0
    assert [row["n_atoms"] for row in data["scaling"]] == [16, 32]
    assert [row["steps"] for row in data["scaling"]] == [3, 2]  # 32 atoms is "large" in quick
    for row in data["scaling"]:
        assert row["sampler_steps"] == row["steps"] + 1  # the final step to t = 0
        assert row["s_per_200_steps"] == pytest.approx(row["s_per_step"] * 201)
        assert row["peak_memory_mib"] > 0
    assert data["environment"]["torch_threads"] >= 1
    throughput = data["throughput"]
    assert throughput["sampler"] == "ode"  # the card names no sampler
    assert [(r["steps"], r["batch"]) for r in throughput["rows"]] == [(1, 1), (1, 2), (2, 1),
                                                                      (2, 2)]
    for row in throughput["rows"]:
        assert row["structures_per_s"] == pytest.approx(1.0 / row["wall_s_per_structure"])
        assert row["cpu_s_per_structure"] > 0
    assert throughput["skipped"] == []


def test_steps_vs_quality(files, tmp_path):
    from benchmarks import steps_vs_quality

    shortcut = tiny_checkpoint(tmp_path / "sc.pt", "tiny-Si-sc", ["Si"], shortcut=True)
    data = steps_vs_quality.main([
        "--checkpoint", str(files["si"]), "--checkpoint", str(shortcut),
        "--reference", files["si_data"], "--quick", "--quiet", "--out", str(tmp_path),
        "--skip", "langevin:2", "--sampler-option", "shortcut:grid=halving",
    ])
    plain, fast = data["models"]["tiny-Si"], data["models"]["tiny-Si-sc"]
    with pytest.raises(AmdenError, match="grid"):  # the option reaches the shortcut column
        steps_vs_quality.main([
            "--checkpoint", str(shortcut), "--reference", files["si_data"], "--quick",
            "--quiet", "--out", str(tmp_path / "bad"), "--samplers", "shortcut",
            "--sampler-option", "shortcut:grid=spiral"])
    with pytest.raises(SystemExit):
        steps_vs_quality.parse_args(["--sampler-option", "grid=halving"])
    assert plain["columns"] == ["sde", "ode", "langevin"]
    assert set(plain["skipped"]) == {"flow", "shortcut"}
    assert "flow" in plain["skipped"]["flow"] and "shortcut" in plain["skipped"]["shortcut"]
    assert fast["columns"] == ["sde", "ode", "langevin", "shortcut"]
    for result in (plain, fast):
        assert result["reference_split"] == "test" and result["n_reference"] == 2
        assert set(result["cells"]["langevin"]) == {"1"}  # langevin:2 was skipped
        for column in result["columns"]:
            for cell in result["cells"][column].values():
                assert finite(cell["rdf_rmsd"]) and finite(cell["adf_rmsd"])
                assert cell["seconds_per_structure"] > 0
        assert finite(result["rdf_rmsd_floor"])
    table = (tmp_path / "steps_vs_quality_tiny-Si-sc.md").read_text()
    assert "| steps | sde | ode | langevin | shortcut (grid=halving) |" in table
    assert fast["column_options"] == {"sde": {}, "ode": {}, "langevin": {},
                                      "shortcut": {"grid": "halving"}}
    assert "| 2 |" in table and "no `flow` column" in table
    assert (tmp_path / "steps_vs_quality_tiny-Si-sc.json").exists()
    assert Path(fast["png"]).stat().st_size > 0


def test_relaxation_gap(files, tmp_path):
    from benchmarks import relaxation_gap

    data = relaxation_gap.main([
        "--checkpoint", str(files["energy"]), "--melt", files["si_data"],
        "--anneal", files["si_data"], "--lammps-time-from", files["si_data"],
        "--quick", "--quiet", "--out", str(tmp_path),
    ])
    assert (tmp_path / "relaxation_gap.json").exists()
    assert Path(data["png"]).stat().st_size > 0
    assert set(data["references"]) == {"melt", "anneal"}
    # the same structures relaxed the same way give the same energy
    assert data["references"]["melt"]["mean"] == pytest.approx(data["references"]["anneal"]["mean"])
    assert data["hmc_available"]
    assert list(data["generated"]) == ["sde", "hmc"]
    for sampler in ("sde", "hmc"):
        generated = data["generated"][sampler]
        assert finite(generated["mean"])
        assert generated["gap_to"]["anneal"] == pytest.approx(
            generated["mean"] - data["references"]["anneal"]["mean"])
        profile = data["profile"][sampler]
        assert 0.0 < profile["network_fraction"] <= 1.0
        assert profile["network_s"] + profile["other_s"] == pytest.approx(profile["total_s"])
        curve = data["noise_energy"][sampler]
        assert curve["t"] and all(finite(e) for e in curve["E_hat"])
        assert set(data["rdf_after_relaxation"]) >= {"r", "melt", "anneal", sampler}
    assert data["profile"]["sde"]["calls"]["forward"] == 3 + 1
    # quick grid 0.99, 0.66, 0.34, 0.01 -> 0: HMC at t <= 0.5, i.e. twice, each with one
    # energy+forces evaluation at the start and one per leapfrog step (15)
    hmc_calls = data["profile"]["hmc"]["calls"]
    assert hmc_calls["forward"] == 3 + 1
    assert hmc_calls["energy"] == hmc_calls["energy_backward"] == 2 * (15 + 1)
    assert 0.0 <= data["generated"]["hmc"]["acceptance_rate"] <= 1.0
    assert data["cost"]["lammps_over_hmc"] == pytest.approx(
        data["cost"]["lammps_s"] / data["cost"]["hmc_s"])
    forward = data["noise_energy"]["forward"]
    assert len(forward["t"]) == 4 and all(finite(e) for e in forward["E_hat"])
    cost = data["cost"]
    assert cost["lammps_s"] == pytest.approx(np.median([100.0, 101.0, 102.0, 103.0]))
    assert finite(cost["standard_s"]) and cost["n_atoms"] == 20


def test_references_are_the_held_out_split_unless_all_is_asked(files):
    from ase_amden.data import AmorphousDataset
    from benchmarks.common import held_out_references

    dataset = AmorphousDataset(files["si_data"])
    n_test = len(dataset.split_indices("test"))
    assert 0 < n_test < len(dataset)
    held_out, split = held_out_references(files["si_data"], None)
    assert (len(held_out), split) == (n_test, "test")
    everything, split = held_out_references(files["si_data"], None, "all")
    assert (len(everything), split) == (len(dataset), "all")


def test_noise_landscape(files, tmp_path):
    from benchmarks import noise_landscape

    data = noise_landscape.main([
        "--checkpoint", str(files["energy"]), "--melt", files["si_data"],
        "--quench", files["si_data"], "--times", "0.05,0.2", "--quick", "--quiet",
        "--out", str(tmp_path), "--tag", "arm",
    ])
    assert (tmp_path / "noise_landscape_arm.json").exists()
    assert set(data["ranking"]) == {"0.05", "0.2"}
    # the same structures in both sets: equal E_hat, so not strictly ranked
    for row in data["ranking"].values():
        assert row["melt"]["mean"] == pytest.approx(row["quench"]["mean"])
        assert finite(row["melt"]["mean"])
    assert data["ranked_like_true_energy"] == {"0.05": False, "0.2": False}
    (run,) = data["descent"]["runs"]
    assert run["E_hat_after"] <= run["E_hat_before"]  # FIRE goes downhill
    assert data["descent"]["true_change"]["mean"] == pytest.approx(
        run["true_after"] - run["true_before"])


def test_noise_landscape_needs_energy_model(files, tmp_path):
    from benchmarks import noise_landscape

    with pytest.raises(AmdenError, match="not energy-based"):
        noise_landscape.main(["--checkpoint", str(files["si"]), "--quench", files["si_data"],
                              "--quick", "--quiet", "--out", str(tmp_path)])


def test_denoising_probe(files, tmp_path):
    from benchmarks import denoising_probe

    data = denoising_probe.main([
        "--checkpoint", str(files["sio2"]), "--reference", files["sio2_data"],
        "--times", "0.1,0.5", "--renoise-times", "0.1,0.3", "--quick", "--quiet",
        "--out", str(tmp_path),
    ])
    assert (tmp_path / "denoising_probe_tiny-SiO2.json").exists()
    assert data["loss"]["t"] == [0.1, 0.5]
    for split in ("train", "test"):
        assert len(data["loss"][split]) == 2 and all(v > 0 for v in data["loss"][split])
    assert [row["t0"] for row in data["recovery"]] == [0.1, 0.3, 0.99]
    assert all(finite(row["rdf_rmsd"]) for row in data["recovery"])
    assert finite(data["rdf_rmsd_floor_test_vs_train"])
    assert data["references_relaxed_energy"] is None
    assert all(row["relaxed_energy"] is None for row in data["recovery"])


def test_denoising_probe_recycles_the_self_conditioning_estimate(files, tmp_path):
    from benchmarks import denoising_probe

    checkpoint = tiny_checkpoint(tmp_path / "sc.pt", "tiny-Si-sc", ["Si"], n_radial=4,
                                 self_condition=True)
    common = ["--reference", files["si_data"], "--times", "0.1,0.5", "--renoise-times", "0.1",
              "--quick", "--quiet", "--out", str(tmp_path)]
    data = denoising_probe.main(["--checkpoint", str(checkpoint), "--recycles", "2", *common])
    for split in ("train", "test"):
        plain, recycled = data["loss"][split], data["loss"][f"{split} recycled"]
        assert len(recycled) == 2 and all(finite(v) for v in recycled)
        assert recycled != plain  # the estimate reaches the network
    with pytest.raises(AmdenError, match="needs a self-conditioning model"):
        denoising_probe.main(["--checkpoint", str(files["si"]), "--recycles", "2", *common])


def test_denoising_probe_relaxed_energy_at_a_target(files, tmp_path):
    from benchmarks import denoising_probe

    data = denoising_probe.main([
        "--checkpoint", str(files["sio2"]), "--reference", files["sio2_data"],
        "--times", "0.1", "--renoise-times", "0.05", "--target", "ring_size=6.5",
        "--potential", "tersoff-sio2", "--tag", "ring6", "--quick", "--quiet",
        "--out", str(tmp_path),
    ])
    assert (tmp_path / "denoising_probe_tiny-SiO2_ring6.json").exists()
    assert data["settings"]["target"] == ["ring_size=6.5"]
    dataset = AmorphousDataset(files["sio2_data"])  # --quick: the first of each split
    references = [dataset[int(dataset.split_indices(name)[0])] for name in ("test", "train")]
    calc = get_calculator("tersoff-sio2")
    unrelaxed = np.mean([calc.get_potential_energy(a) / len(a) for a in references])
    # relaxation lowers the energy of the references; every row carries a finite energy
    assert data["references_relaxed_energy"]["mean"] < unrelaxed
    assert data["references_relaxed_energy"]["n"] == 2
    for row in data["recovery"]:
        assert finite(row["relaxed_energy"]["mean"]) and row["relaxed_energy"]["n"] == 2, row
    with pytest.raises(AmdenError, match="NAME=VALUE"):
        denoising_probe.main(["--checkpoint", str(files["sio2"]), "--reference",
                              files["sio2_data"], "--target", "ring_size", "--quick", "--quiet",
                              "--out", str(tmp_path)])
    with pytest.raises(AmdenError, match="unknown target property 'density'"):
        denoising_probe.main(["--checkpoint", str(files["sio2"]), "--reference",
                              files["sio2_data"], "--target", "density=2.2", "--quick",
                              "--quiet", "--out", str(tmp_path)])


def test_silica_cooling_rate(tmp_path):
    from ase.build import make_supercell
    from ase.spacegroup import crystal

    from benchmarks import silica_cooling_rate

    quartz = make_supercell(  # 72 atoms in an orthorhombic cell (MD stages need one)
        crystal(["Si", "O"], [(0.4697, 0, 1 / 3), (0.4135, 0.2669, 0.2144)], spacegroup=152,
                cellpar=[4.916, 4.916, 5.405, 90, 90, 120]), [[2, 0, 0], [1, 2, 0], [0, 0, 2]])
    images = []
    for rate in (1.0, 10.0):
        atoms = quartz.copy()
        atoms.info["cooling_rate"] = rate
        images.append(atoms)
    data = AmorphousDataset.write(tmp_path / "q.h5", images, units={"cooling_rate": "K/ps"})
    config = DenoiserConfig(n_classes=3, property_names=("cooling_rate",), hidden=8, n_layers=1,
                            n_vector=2, cutoff=3.0, time_dim=4, property_dim=4,
                            property_basis=4)
    torch.manual_seed(0)
    card = ModelCard(
        name="toy-sio2", elements=["O", "Si"], model_config=asdict(config),
        property_names=["cooling_rate"], property_units=["K/ps"], property_mean=[0.5],
        property_std=[1.0], property_log10=[True], property_range=[[0.0, 1.0]],
        fixed_composition=True,
        training={"default_composition": {"O": 48, "Si": 24}, "default_n_atoms": 72,
                  "default_number_density": 0.066},
    )
    checkpoint = save_checkpoint(tmp_path / "toy.pt", Denoiser(config).double(), card)
    result = silica_cooling_rate.main(["--checkpoint", str(checkpoint), "--dataset",
                                       data.path, "--split", "all", "--quick", "--out",
                                       str(tmp_path), "--quiet", "--md-potential", "jakse-sio2",
                                       "--md-probe-ps", "0.02"])
    md = result["md"]
    assert md["n_atoms"] == 72 and md["seconds_per_ps"] > 0
    # DM2's protocol: 250 ps plus the cooling, so 0.1 K/ps costs ~100x the time of 10 K/ps
    times = md["time_per_structure_s"]
    assert times["1.0"] / times["10.0"] == pytest.approx((250 + 4700) / (250 + 470))
    quartz_metrics = result["data"]["1.0"]["metrics"]
    assert quartz_metrics["former_fraction"] == 1.0 and quartz_metrics["anion_fraction"] == 1.0
    assert quartz_metrics["bridge_angle_mean"] == pytest.approx(143.7, abs=0.5)
    generated = result["generated"]["1.0"]
    assert generated["n"] == 1 and generated["time_per_structure_s"] > 0
    assert 0.0 <= generated["metrics"]["former_fraction"] <= 1.0
    assert (tmp_path / "silica_cooling_rate_toy-sio2.json").exists()
    assert Path(result["png"]).exists()
    # a real melt-quench beside the data, without generation
    result = silica_cooling_rate.main(["--checkpoint", str(checkpoint), "--dataset", data.path,
                                       "--split", "all", "--quick", "--count", "0", "--out",
                                       str(tmp_path), "--quiet", "--md-potential", "jakse-sio2",
                                       "--md-quench", "1e5", "--md-quench-ps", "0.1", "0.02"])
    assert result["generated"] == {} and Path(result["png"]).exists()
    quench = result["md_quench"]  # 72 atoms of quartz melted, cooled at 1e5 K/ps, relaxed
    assert quench["rate"] == 1e5 and quench["time_per_structure_s"] > 0
    assert quench["melt_msd_A2"] > 0 and quench["n_atoms"] == 72
    assert 0.0 <= quench["metrics"]["former_fraction"] <= 1.0
    assert quench["metrics"]["density_g_cm3"]["mean"] > 1.0
    assert "md-quench" in silica_cooling_rate.table(result)
    with pytest.raises(SystemExit):  # a melt-quench needs a potential to run it with
        silica_cooling_rate.main(["--checkpoint", str(checkpoint), "--md-quench", "100"])


def test_analyze_memory(tmp_path):
    from ase.build import bulk
    from ase.io import write

    from benchmarks import analyze_memory

    crystal = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    images = []
    for seed in range(3):
        atoms = crystal.copy()
        atoms.rattle(0.1, seed=seed)
        images.append(atoms)
    write(tmp_path / "set.extxyz", images)
    data = analyze_memory.main([str(tmp_path / "set.extxyz"), "--batch-sizes", "10", "100",
                                "--out", str(tmp_path), "--quiet"])
    assert (tmp_path / "analyze_memory.json").exists()
    assert [run["entropy_batch_size"] for run in data["runs"]] == [10, 100]
    for run in data["runs"]:
        assert run["wall_s"] > 0 and 50 < run["peak_rss_mib"] < 4000


def test_steps_vs_quality_property_mae(files, tmp_path):
    from benchmarks import steps_vs_quality

    data = steps_vs_quality.main([
        "--checkpoint", str(files["sio2"]), "--reference", files["sio2_data"], "--quick",
        "--quiet", "--out", str(tmp_path), "--samplers", "ode", "--rows", "1",
        "--property-mae", "--property-rows", "1", "--n-targets", "2",
    ])
    result = data["models"]["tiny-SiO2"]
    assert result["columns"] == ["ode"]
    mae = result["property_mae"]["ode"]["1"]
    assert set(mae) == {"shear_modulus", "ring_size"}
    assert mae["shear_modulus"]["units"] == "GPa"
    for value in mae.values():
        assert value["n"] <= 2 and (value["n"] == 0 or value["mean"] >= 0.0)
    table = (tmp_path / "steps_vs_quality_tiny-SiO2.md").read_text()
    assert "ode, 1 steps: shear_modulus MAE" in table
    assert "`sde` not run" in table


def test_equivalent_cooling_rate(files, tmp_path):
    from ase_amden.data import get_protocol
    from benchmarks import equivalent_cooling_rate

    paths = []
    for k, name in enumerate(("a-Si-melt", "a-Si-cool1000", "a-Si-cool10", "a-Si-anneal")):
        images = random_structures({"Si": 20}, 4, 10 + k)
        paths.append(str(AmorphousDataset.write(tmp_path / f"{name}.h5", images,
                                                protocol=get_protocol(name).to_dict()).path))
    data = equivalent_cooling_rate.main([
        "--checkpoint", str(files["si"]), "--calibration", *paths, "--reference", paths[-1],
        "--melt", paths[0], "--quick", "--quiet", "--out", str(tmp_path),
    ])
    assert (tmp_path / "equivalent_cooling_rate_tiny-Si.json").exists()
    assert Path(data["png"]).stat().st_size > 0
    assert [p["rate"] for p in data["calibration"]] == [None, 1000.0, 10.0, 1.0]
    for point in data["calibration"] + [data["generated"]]:
        assert point["n"] == 2 and finite(point["mean"]) and finite(point["rdf_rmsd_relaxed"])
    equivalent = data["equivalent"]
    rates = [p for p in data["calibration"] if p["rate"]]
    inside = min(p["mean"] for p in rates) <= data["generated"]["mean"] <= max(
        p["mean"] for p in rates)
    assert (equivalent["rate_K_per_ps"] is not None) == inside == (equivalent["bound"] is None)
    speed = data["speed"]
    assert speed["md_s_per_step"] > 0 and speed["generation_s"] > 0
    assert speed["speedup"] == pytest.approx(speed["md_s"] / speed["generation_s"])
    assert speed["md_ps"] == pytest.approx(20 + 2200 / speed["rate_used_K_per_ps"] + 10)
    arm = data["md_start"]
    assert set(arm["starts"]) == {"generated", "melt"}
    assert [row["md_ps"] for row in arm["starts"]["melt"]] == [0.0, 0.1]
    assert len(arm["generated_minus_melt"]) == 2


def test_equivalent_rate_interpolates_log_rate_and_bounds():
    from benchmarks.equivalent_cooling_rate import equivalent_rate

    points = [{"rate": 100.0, "energies": [-4.09] * 3}, {"rate": 10.0, "energies": [-4.11] * 3},
              {"rate": 1.0, "energies": [-4.13] * 3}, {"rate": math.inf, "energies": [-4.0]}]
    middle = equivalent_rate([-4.10, -4.10], points, 20, 0)
    assert middle["rate_K_per_ps"] == pytest.approx(10**1.5)
    assert middle["bound"] is None
    assert middle["bootstrap_16_50_84_K_per_ps"][1] == pytest.approx(10**1.5)
    fast = equivalent_rate([-4.05], points, 20, 0)
    assert fast["rate_K_per_ps"] is None and "faster than 100" in fast["bound"]
    assert fast["bootstrap_fraction_faster_than_calibrated"] == 1.0


def test_train_step_speed(tmp_path):
    from benchmarks import train_step_speed

    data = train_step_speed.main([
        "--dataset", str(ROOT / "datasets" / "a-Si-anneal.h5"), "--variants", "plain-1",
        "amp-1", "--batch-size", "2", "--quick", "--quiet", "--out", str(tmp_path),
    ])
    assert (tmp_path / "train_step_speed.json").exists()
    assert data["network"]["hidden"] == 8 and data["network"]["cutoff"] == 5.0
    for result in data["variants"].values():
        assert result["timed_steps"] == 2 and 0 < result["min_s"] <= result["median_s"]
        assert result["median_s"] <= result["max_s"] < result["total_s"]
    assert data["variants"]["plain-1"]["speedup_vs_plain_1"] == 1.0
    assert data["variants"]["amp-1"]["options"] == {"amp": True}


def test_model_study(files, tmp_path):
    import json

    from benchmarks import model_study

    calibration = tmp_path / "calibration.json"
    calibration.write_text(json.dumps({"calibration": [
        {"name": "fast", "rate": 1000.0, "energies": [-3.0, -2.9]},
        {"name": "slow", "rate": 1.0, "energies": [-4.2, -4.1]},
        {"name": "melt", "rate": None, "energies": [-2.0]}]}))
    data = model_study.main([
        "--name", "tiny", "--arm", f"a={files['si']}", "--arm", f"b={files['si']}",
        "--reference", files["si_data"], "--calibration-from", str(calibration),
        "--times", "0.1,0.5", "--batch-size", "2", "--quick", "--quiet", "--out", str(tmp_path),
    ])
    assert set(data["arms"]) == {"a", "b"}
    a, b = data["arms"]["a"], data["arms"]["b"]
    assert list(a["noise_loss"]) == ["0.1", "0.5"] and all(v > 0 for v in a["noise_loss"].values())
    assert a["noise_loss"] == b["noise_loss"] and a["energies"] == b["energies"]  # same seed
    assert a["n"] == 2 and finite(a["rdf_rmsd_relaxed"]) and a["train_step_s"] > 0
    assert data["calibration"][2]["rate"] is None
    table = (tmp_path / "model_study_tiny.md").read_text()
    assert table.count("\n") == 4 and "loss t=0.1" in table
    common = ["--name", "tiny", "--reference", files["si_data"], "--calibration-from",
              str(calibration), "--times", "0.1,0.5", "--batch-size", "2", "--quick", "--quiet",
              "--out", str(tmp_path)]
    more = model_study.main(["--arm", f"c={files['si']}", "--append", *common])
    assert list(more["arms"]) == ["a", "b", "c"] and more["arms"]["a"] == a
    with pytest.raises(Exception, match="already in the study"):
        model_study.main(["--arm", f"c={files['si']}", "--append", *common])
    with pytest.raises(Exception, match="other settings"):
        model_study.main(["--arm", f"d={files['si']}", "--append", *common, "--seed", "3"])
    with pytest.raises(Exception, match="no property 'cooling_rate'"):
        model_study.main(["--name", "x", "--arm", f"a={files['si']}@cooling_rate=1",
                          "--reference", files["si_data"], "--calibration-from",
                          str(calibration), "--quick", "--quiet", "--out", str(tmp_path)])


def test_guided_exploration(files, tmp_path):
    from benchmarks import guided_exploration

    data = guided_exploration.main([
        "--checkpoint", str(files["energy"]), "--start", files["si_data"], "--steps", "4",
        "--quick", "--quiet", "--out", str(tmp_path),
    ])
    assert (tmp_path / "guided_exploration.json").exists()
    (row,) = data["structures"]
    for arm in guided_exploration.ARMS:
        assert finite(row[arm]) and row[arm] < 0  # relaxed SW energies, eV/atom
    assert row["guided_s"] > 0 and row["plain_same_time_steps"] >= 1
    with pytest.raises(Exception, match="not energy-based"):
        guided_exploration.main(["--checkpoint", str(files["si"]), "--start", files["si_data"],
                                 "--quick", "--quiet", "--out", str(tmp_path)])
