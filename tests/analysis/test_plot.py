from ase_amden.analysis import plot_report

from .conftest import cristobalite_cell


def test_report_png(tmp_path, diamond):
    rattled = diamond.copy()
    rattled.rattle(0.1, seed=0)
    path = plot_report(
        [rattled],
        reference=[diamond],
        path=tmp_path / "report.png",
        energies=[-4.2],
        reference_energies=[-4.3366],
    )
    data = (tmp_path / "report.png").read_bytes()
    assert path.endswith("report.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    # without reference or energies, and for silica (rings in Si); a cell below 10 Å wide
    # gets the RDF panel to half the cell width instead of failing
    plot_report(cristobalite_cell(), path=tmp_path / "silica.png")
    assert (tmp_path / "silica.png").stat().st_size > 20_000
