"""Smoke runs of the inpainting and experiment-guidance benchmarks with tiny settings."""

import math

import numpy as np

from benchmarks import experiment_guidance, inpainting


def test_inpainting_benchmark_runs(tmp_path):
    results = inpainting.main(["--count", "1", "--steps", "2", "--out",
                               str(tmp_path / "inpainting.json")])
    assert results["fixed_max_displacement"] == 0.0
    assert results["fixed_max_displacement_relaxed"] == 0.0
    assert math.isfinite(results["relaxed"]["seam"]["coordination_vs_bulk_percent"])
    assert (tmp_path / "inpainting.json").exists()


def test_experiment_guidance_benchmark_runs(tmp_path):
    report = experiment_guidance.main(["--count", "1", "--steps", "2", "--rmc-moves", "5",
                                       "--out", str(tmp_path / "guidance.json")])
    for name in ("unguided", "guided", "rmc", "truth"):
        values = report["results"][name]
        assert np.isfinite(list(values.values())).all()
    assert report["results"]["truth"]["rdf_rmsd"] == 0.0
