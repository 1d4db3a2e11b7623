"""What ships with the package: license, citation, and docstrings that cite shipped sources."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_license_file_matches_pyproject():
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_citation_names_the_version_and_the_papers():
    import ase_amden

    text = (ROOT / "CITATION.cff").read_text()
    assert text.startswith("cff-version: 1.2.0")
    assert f"version: {ase_amden.__version__}" in text
    for title in ("Inverse Design of Amorphous Materials with Targeted Properties",
                  "AMShortcut", "A generative diffusion model for amorphous materials"):
        assert title in text


def test_no_docstring_cites_the_unshipped_spec():
    """The spec the project was written from is not shipped; cite the papers instead."""
    cited = [f"{path.relative_to(ROOT)}:{n}"
             for path in (ROOT / "ase_amden").rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\bSPEC\b", line)]
    assert cited == []
