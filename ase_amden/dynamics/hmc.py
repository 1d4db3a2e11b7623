"""Hamiltonian Monte Carlo as an ASE dynamics class."""

from __future__ import annotations

import math

import numpy as np
import torch
from ase import Atoms, units
from ase.md.logger import MDLogger
from ase.md.md import MolecularDynamics

from ase_amden.dynamics.hmc_kernel import hmc_step
from ase_amden.errors import InvalidArgumentError, InvalidStructureError


class HMC(MolecularDynamics):
    """Hamiltonian Monte Carlo sampling of the canonical (NVT) ensemble.

    Each :meth:`step` is one HMC iteration: momenta are drawn from the
    Maxwell-Boltzmann distribution at ``kT``, ``n_leapfrog`` velocity-Verlet steps
    are taken with the forces of the attached calculator, and the end point is
    accepted with probability ``min(1, exp(-(H_new - H_old) / kT))`` on the total
    energy ``H = E_pot + E_kin``; on rejection the positions are restored. The
    positions are thereby sampled from ``exp(-E_pot / kT)`` exactly, whatever the
    timestep: a too large timestep only lowers :attr:`acceptance_rate`.

    Works with any ASE calculator, including
    :class:`ase_amden.calculators.NoiseEnergyCalculator` (use ``kT=1`` there, its
    energy is in noise-energy units treated as eV). Observers and trajectories work as
    for every ASE dynamics (``trajectory=``, :meth:`attach`); after each iteration
    ``atoms.info`` holds ``hmc_acceptance`` (the acceptance rate so far) and
    ``hmc_iterations``, which trajectories keep. The log (``logfile=``,
    :class:`HMCLogger`) has one line per logged iteration, written after it (the state
    before the first has no momenta, so no temperature), with the simulated time
    ``iterations x n_leapfrog x timestep`` and the acceptance rate. Constraints are not
    supported.

    Parameters
    ----------
    atoms
        The structure; it must have a calculator.
    timestep
        Velocity-Verlet timestep in ASE time units (e.g. ``2 * ase.units.fs``).
    temperature_K
        Temperature in K.
    kT
        Temperature in eV (give exactly one of ``temperature_K`` and ``kT``).
    n_leapfrog
        Velocity-Verlet steps per HMC iteration.
    rng
        ``int`` seed, ``numpy.random.Generator``, ``torch.Generator`` or ``None``.
    **kwargs
        Passed to :class:`ase.md.md.MolecularDynamics` (``trajectory``, ``logfile``,
        ``loginterval``, ``append_trajectory``).

    Attributes
    ----------
    n_proposed, n_accepted
        Number of HMC iterations done and accepted so far.

    Examples
    --------
    >>> from ase.build import bulk
    >>> from ase.calculators.emt import EMT
    >>> atoms = bulk("Cu", cubic=True)
    >>> atoms.calc = EMT()
    >>> dyn = HMC(atoms, 2 * units.fs, temperature_K=300, n_leapfrog=5, rng=0)
    >>> dyn.run(3)
    True
    >>> dyn.n_proposed
    3

    """

    def __init__(
        self,
        atoms: Atoms,
        timestep: float,
        *,
        temperature_K: float | None = None,
        kT: float | None = None,
        n_leapfrog: int = 15,
        rng: int | np.random.Generator | torch.Generator | None = None,
        **kwargs,
    ):
        if (temperature_K is None) == (kT is None):
            raise TypeError("give exactly one of temperature_K (in K) and kT (in eV)")
        self.kT = float(kT) if kT is not None else units.kB * float(temperature_K)
        if not self.kT > 0:
            raise ValueError(f"the temperature must be positive, got kT = {self.kT} eV")
        if n_leapfrog < 1:
            raise ValueError(f"n_leapfrog must be at least 1, got {n_leapfrog}")
        if not (math.isfinite(timestep) and timestep > 0):
            raise InvalidArgumentError(
                f"the timestep must be a positive, finite number (ASE time units, e.g. "
                f"2 * ase.units.fs), got {timestep}; with 0 nothing moves, with NaN every "
                "step is rejected"
            )
        if atoms.constraints:
            raise InvalidStructureError(
                "HMC does not support constraints; remove them (atoms.set_constraint()) "
                "or use a constrained ASE integrator such as VelocityVerlet"
            )
        self.n_leapfrog = int(n_leapfrog)
        # imported here: ase_amden.diffusion builds on this package
        from ase_amden.diffusion.rng import torch_generator

        self.generator = torch_generator(rng)
        self.n_proposed = 0
        self.n_accepted = 0
        logfile = kwargs.pop("logfile", None)
        loginterval = kwargs.get("loginterval", 1)
        MolecularDynamics.__init__(self, atoms, timestep, **kwargs)
        if logfile:
            self.attach(self.closelater(HMCLogger(self, atoms, logfile)), loginterval)

    def get_time(self) -> float:
        """Simulated time, ASE units: ``n_leapfrog`` timesteps per iteration."""
        return self.nsteps * self.n_leapfrog * self.dt

    @property
    def temperature_K(self) -> float:
        """Sampling temperature in K."""
        return self.kT / units.kB

    @property
    def acceptance_rate(self) -> float:
        """Fraction of accepted HMC iterations so far (NaN before the first step)."""
        return self.n_accepted / self.n_proposed if self.n_proposed else math.nan

    def todict(self) -> dict:
        """Parameters of this dynamics, as stored in trajectories."""
        d = MolecularDynamics.todict(self)
        d.update(
            {"temperature_K": self.temperature_K, "kT": self.kT, "n_leapfrog": self.n_leapfrog}
        )
        return d

    def _energy_and_forces(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move the atoms to ``positions`` and ask the calculator (kernel callback)."""
        self.atoms.set_positions(positions.numpy())
        energy = self.atoms.get_potential_energy()
        forces = np.asarray(self.atoms.get_forces(md=True), dtype=np.float64)
        return torch.tensor([energy], dtype=torch.float64), torch.from_numpy(forces)

    def step(self) -> None:
        """Do one HMC iteration (``n_leapfrog`` force calls and one accept/reject)."""
        atoms = self.atoms
        start = np.array(atoms.get_positions(), dtype=np.float64)
        energy = torch.tensor([atoms.get_potential_energy()], dtype=torch.float64)
        forces = torch.from_numpy(np.asarray(atoms.get_forces(md=True), dtype=np.float64))
        result = hmc_step(
            torch.from_numpy(start),
            self._energy_and_forces,
            masses=torch.from_numpy(np.array(self.masses[:, 0], dtype=np.float64)),
            kT=self.kT,
            timestep=self.dt,
            n_leapfrog=self.n_leapfrog,
            generator=self.generator,
            energy=energy,
            forces=forces,
        )
        accepted = bool(result.accepted[0])
        if not accepted:
            atoms.set_positions(start)
        atoms.set_momenta(result.momenta.numpy(), apply_constraint=False)
        self.n_proposed += 1
        self.n_accepted += accepted
        atoms.info["hmc_acceptance"] = self.acceptance_rate
        atoms.info["hmc_iterations"] = self.n_proposed


class HMCLogger(MDLogger):
    """Log of an :class:`HMC` run: time, iteration, energies, temperature, acceptance rate.

    One line per call after an iteration; the call before the first iteration writes nothing
    (the momenta are drawn inside the iteration, so the initial state has no temperature).
    Time is in ps, ``iterations x n_leapfrog x timestep``; T is the kinetic temperature of
    the momenta after the accept/reject step.
    """

    def __init__(self, dyn: HMC, atoms: Atoms, logfile, mode: str = "a"):
        MDLogger.__init__(self, dyn, atoms, logfile, header=False, mode=mode)
        self.hmc = dyn
        self.logfile.write(f"{'Time[ps]':<10}{'Iter':>8} {'Etot[eV]':>12} {'Epot[eV]':>12} "
                           f"{'Ekin[eV]':>12} {'T[K]':>8} {'Acc':>6}\n")

    def __call__(self) -> None:
        """Write the line of the current iteration (nothing before the first)."""
        dyn = self.hmc
        if dyn.nsteps == 0:
            return
        epot = self.atoms.get_potential_energy()
        ekin = self.atoms.get_kinetic_energy()
        self.logfile.write(
            f"{dyn.get_time() / (1000 * units.fs):<10.4f}{dyn.nsteps:>8d} {epot + ekin:>12.4f} "
            f"{epot:>12.4f} {ekin:>12.4f} {self.atoms.get_temperature():>8.1f} "
            f"{dyn.acceptance_rate:>6.3f}\n"
        )
        self.logfile.flush()
