"""Melt-quench protocols written as data.

A :class:`Protocol` fixes everything that makes a dataset reproducible: the
potential, the composition and size range, the density, the MD timestep and the
sequence of :class:`Stage` objects (NVT segments with a start and end temperature,
and energy minimisations). Sample ``i`` of a dataset uses ``seed + i``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import unknown_name


@dataclass(frozen=True)
class Stage:
    """One step of a melt-quench protocol.

    Attributes
    ----------
    kind
        ``"nvt"`` (Nosé-Hoover MD) or ``"minimize"`` (conjugate gradients,
        positions only: an instant quench).
    temperature_K
        Thermostat temperature at the start of an NVT stage, K.
    end_temperature_K
        Thermostat temperature at its end, K (``None``: constant). A linear ramp
        gives the cooling rate ``(T0 - T1) / duration_ps`` in K/ps.
    duration_ps
        Length of an NVT stage, ps.
    measure_msd
        Record the mean-squared displacement over this stage (Å^2): shows that a
        melt has decorrelated from its starting configuration.

    """

    kind: str
    temperature_K: float = 0.0
    end_temperature_K: float | None = None
    duration_ps: float = 0.0
    measure_msd: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("nvt", "minimize"):
            raise ValueError(f"stage kind must be 'nvt' or 'minimize', got {self.kind!r}")
        if self.kind == "nvt" and (self.temperature_K <= 0 or self.duration_ps <= 0):
            raise ValueError("an nvt stage needs temperature_K > 0 and duration_ps > 0")

    @property
    def cooling_rate_K_per_ps(self) -> float:
        """Cooling rate of a ramp, K/ps (0 for a constant temperature)."""
        if self.end_temperature_K is None or self.kind != "nvt":
            return 0.0
        return (self.temperature_K - self.end_temperature_K) / self.duration_ps


@dataclass(frozen=True)
class Protocol:
    """A melt-quench recipe, run in LAMMPS by :func:`ase_amden.data.run_protocol`.

    Attributes
    ----------
    name
        Registry name, e.g. ``"a-Si-anneal"``.
    potential
        Name in :data:`ase_amden.potentials.POTENTIALS`.
    formula
        Atoms per formula unit, e.g. ``{"Si": 1, "O": 2}``.
    n_atoms
        ``(min, max)`` number of atoms; each sample draws a size uniformly in this
        range, rounded down to whole formula units.
    density_g_cm3
        Mass density of the cubic cell, g/cm^3.
    timestep_fs
        MD timestep, fs.
    stages
        What is run, in order, after random placement of the atoms.
    analyses
        Extra per-sample properties: ``"elastic"`` (relaxed-ion elastic tensor,
        K and G) and ``"rings"`` (average shortest-path ring size).
    seed
        Seed of sample 0.
    thermostat_damping_fs
        Nosé-Hoover damping time, fs.
    description
        One line for humans.

    """

    name: str
    potential: str
    formula: dict[str, int]
    n_atoms: tuple[int, int]
    density_g_cm3: float
    timestep_fs: float
    stages: tuple[Stage, ...]
    analyses: tuple[str, ...] = ()
    seed: int = 1
    thermostat_damping_fs: float = 100.0
    description: str = ""
    reference: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (stored with every dataset)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protocol:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["stages"] = tuple(Stage(**s) for s in data["stages"])
        data["n_atoms"] = tuple(data["n_atoms"])
        data["analyses"] = tuple(data.get("analyses", ()))
        return cls(**data)

    @property
    def md_time_ps(self) -> float:
        """Total simulated MD time per sample, ps."""
        return sum(s.duration_ps for s in self.stages if s.kind == "nvt")


_SI_MELT = (
    Stage("minimize"),
    Stage("nvt", 2500.0, duration_ps=20.0, measure_msd=True),
)
_A_SI_MELT = Protocol(
    name="a-Si-melt",
    potential="sw-si",
    formula={"Si": 1},
    n_atoms=(256, 256),
    density_g_cm3=2.33,
    timestep_fs=2.0,
    stages=_SI_MELT,
    seed=100_000,
    description="snapshots of the Stillinger-Weber Si liquid at 2500 K",
    reference="Finkler, Lin et al. (AMDEN), Methods: 256 Si, Stillinger-Weber",
)

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        _A_SI_MELT,
        replace(
            _A_SI_MELT,
            name="a-Si-quench",
            stages=(*_SI_MELT, Stage("nvt", 300.0, duration_ps=10.0)),
            seed=200_000,
            description="2500 K melt, thermostat set to 300 K at once, 10 ps at 300 K",
        ),
        replace(
            _A_SI_MELT,
            name="a-Si-anneal",
            stages=(
                *_SI_MELT,
                Stage("nvt", 2500.0, 300.0, duration_ps=2200.0),
                Stage("nvt", 300.0, duration_ps=10.0),
            ),
            seed=300_000,
            description="2500 K melt cooled to 300 K at 1 K/ps, then 10 ps at 300 K",
        ),
        *(
            replace(
                _A_SI_MELT,
                name=f"a-Si-cool{rate}",
                stages=(
                    *_SI_MELT,
                    Stage("nvt", 2500.0, 300.0, duration_ps=2200.0 / rate),
                    Stage("nvt", 300.0, duration_ps=10.0),
                ),
                seed=seed,
                description=f"2500 K melt cooled to 300 K at {rate} K/ps, then 10 ps at 300 K "
                "(cheap points of the cooling-rate calibration)",
            )
            for rate, seed in ((1000, 500_000), (100, 600_000), (10, 700_000))
        ),
        Protocol(
            name="a-SiO2",
            potential="tersoff-sio2",
            formula={"Si": 1, "O": 2},
            n_atoms=(80, 250),
            density_g_cm3=2.2,
            timestep_fs=1.0,
            stages=(
                Stage("minimize"),
                Stage("nvt", 3500.0, duration_ps=50.0, measure_msd=True),
                Stage("minimize"),
                Stage("nvt", 300.0, duration_ps=10.0),
            ),
            analyses=("elastic", "rings"),
            seed=400_000,
            description="3500 K melt, instant quench by minimisation, 10 ps at 300 K",
            reference="Finkler, Lin et al. (AMDEN), Methods: 80-250 atoms, Tersoff (Munetoh)",
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """Look up a protocol by name; an unknown name lists the valid ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise unknown_name("protocol", name, PROTOCOLS) from None
