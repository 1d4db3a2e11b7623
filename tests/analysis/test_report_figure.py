"""The report figure: species-resolved panels, angles per bond pair, metrics and provenance."""

import numpy as np
import pytest
from ase.build import bulk

from ase_amden.analysis import report_figure

from .conftest import cristobalite_cell


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def _text(fig):
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


@pytest.fixture(scope="module")
def silica_figure():
    atoms = cristobalite_cell().repeat((2, 2, 2))
    atoms.rattle(0.05, seed=0)
    atoms.info.update(model="a-SiO2", model_hash="0123456789ab", sampler="sde", steps=200,
                      seed=7, crystalline=False)
    return report_figure([atoms], reference=[cristobalite_cell().repeat((2, 2, 2))],
                         metrics={"rdf_rmsd": 0.12, "adf_rmsd": 0.004,
                                  "generated": {"n_structures": 1, "density": 0.066}})


def test_silica_gets_partials_bond_angles_coordination_and_stoichiometry(silica_figure):
    fig = silica_figure
    titles = _titles(fig)
    assert titles[:4] == ["Total radial distribution", "Partial RDF Si-O", "Partial RDF O-O",
                          "Partial RDF Si-Si"]
    angles = [t for t in titles if "angles" in t]
    assert angles == ["Si-O-Si angles (O-Si bonds < 2.30 Å)",
                      "O-Si-O angles (Si-O bonds < 2.30 Å)"]
    assert {"Coordination", "Rings", "Stoichiometry", "Metrics and provenance"} <= set(titles)
    # the O-Si-O panel peaks at the tetrahedral angle, not at the 35/60 degree artefacts
    # of one 3 Å cutoff for all pairs
    panel = next(ax for ax in fig.axes if ax.get_title().startswith("O-Si-O"))
    theta, density = panel.lines[0].get_data()
    assert abs(theta[np.argmax(density)] - 109.5) < 8
    assert density[(theta > 25) & (theta < 70)].sum() == 0
    text = _text(fig)
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["rdf_rmsd"] == ["0.12"] and rows["adf_rmsd"] == ["0.004", "1/degree"]
    assert rows["density"] == ["0.066", "atoms/Å^3"]
    assert "model: a-SiO2" in text and "seed: 7" in text and "model_hash: 0123456789ab" in text
    assert "generated: 1 structures, 192-192 atoms" in text
    assert "crystallized (spglib): 0 of 1" in text


def test_coordination_histogram_counts_bonded_neighbours(silica_figure):
    panel = next(ax for ax in silica_figure.axes if ax.get_title() == "Coordination")
    bars = {p.get_label() for p in panel.containers}
    assert bars == {"Si (generated)", "O (generated)", "Si (reference)", "O (reference)"}
    heights = {c.get_label(): [b.get_height() for b in c] for c in panel.containers}
    assert max(heights["Si (generated)"]) == pytest.approx(1.0)  # every Si has 4 O
    assert np.argmax(heights["Si (generated)"]) == 4 and np.argmax(heights["O (generated)"]) == 2


def test_one_element_has_no_partials_and_uses_the_bond_cutoff():
    titles = _titles(report_figure([bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)]))
    assert not any(t.startswith("Partial") for t in titles)
    assert "Si-Si-Si angles (Si-Si bonds < 2.89 Å)" in titles
