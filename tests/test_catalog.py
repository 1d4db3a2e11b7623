"""``ase-amden models`` and ``available_pretrained(details=True)``: what each model can do."""

import fnmatch
import json
import re
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path

import pytest
import torch

from ase_amden.catalog import format_details, model_details, read_quality_table
from ase_amden.cli import main
from ase_amden.generator import AmorphousGenerator
from ase_amden.models import Denoiser, DenoiserConfig, ModelCard
from ase_amden.training import save_checkpoint

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def shipped():
    return {d.name: d for d in AmorphousGenerator.available_pretrained(details=True)}


def test_every_shipped_model_is_described(shipped):
    assert list(shipped) == AmorphousGenerator.available_pretrained()
    silica = shipped["a-SiO2"]
    assert silica.elements == ["O", "Si"]
    assert any(k.startswith("ghost atoms") for k in silica.kind)
    assert [(p["name"], p["unit"]) for p in silica.properties] == [
        ("shear_modulus", "GPa"), ("ring_size", "Si atoms")]
    assert silica.properties[0]["mean"] == pytest.approx(26.11, abs=0.01)
    assert any(k.startswith("energy-based") for k in shipped["a-Si-energy"].kind)
    assert (shipped["a-Si"].sampler, shipped["a-Si"].steps) == ("sde", 200)
    assert shipped["a-Si"].quality["rdf_rmsd"] == "0.33"
    assert shipped["a-Si"].targets == {"cooling_rate": 1.0}
    assert "default targets: cooling_rate = 1" in format_details(shipped["a-Si"])
    assert shipped["a-SiO2"].quality["adf_rmsd"] == "0.0014"
    assert shipped["a-Si-melt-energy"].quality == {}
    assert "measured: not measured" in format_details(shipped["a-Si-melt-energy"])


def _checkpoint(tmp_path, **changes):
    config = DenoiserConfig(n_classes=2, property_names=("cooling_rate",), hidden=8, n_layers=1,
                            n_vector=2, cutoff=3.0)
    card = ModelCard(name="toy", elements=["Si"], model_config=asdict(config),
                     property_names=["cooling_rate"], property_units=["K/ps"],
                     property_mean=[1.0], property_std=[0.5], property_log10=[True],
                     property_range=[[0.0, 2.0]], sampling={"sampler": "ode", "steps": 30})
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "toy.pt", Denoiser(config), replace(card, **changes))


def test_card_quality_and_trained_range_in_units(tmp_path):
    details = model_details(_checkpoint(tmp_path, quality={"rdf_rmsd": 0.2}), {})
    assert details.quality == {"rdf_rmsd": 0.2}
    assert details.properties[0]["trained_range"] == pytest.approx([1.0, 100.0])  # 10**[0, 2]
    assert (details.sampler, details.steps) == ("ode", 30)
    assert "cooling_rate [K/ps]: trained on 1 to 100 K/ps" in format_details(details)
    table = {"toy": {"rdf_rmsd": "0.9"}}
    assert model_details(_checkpoint(tmp_path), table).quality == {"rdf_rmsd": "0.9"}


def test_quality_table_parsing():
    text = "intro\n## Measured quality\n\n| model | a | b |\n| --- | --- | --- |\n| m1 | 1 | |\n"
    assert read_quality_table(text) == {"m1": {"a": "1"}}
    assert read_quality_table("no table here") == {}


def test_cli_lists_each_model_once(capsys, shipped):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in shipped:
        assert sum(line.startswith(f"{name}:") or line.startswith(f"{name} (default):")
                   for line in out.splitlines()) == 1
    assert "a-Si (default):" in out and "property shear_modulus [GPa]" in out
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {d["name"] for d in listed} == set(shipped)


def test_pretrained_readme_is_package_data():
    readme = resources.files("ase_amden").joinpath("pretrained/README.md")
    assert "## Measured quality" in readme.read_text("utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is not in Python 3.10)
    section = pyproject.split("[tool.setuptools.package-data]", 1)[1]
    patterns = re.findall(r'"([^"]+)"', re.search(r"ase_amden = \[(.*?)\]", section, re.S)[1])
    assert any(fnmatch.fnmatch("pretrained/README.md", pattern) for pattern in patterns)
