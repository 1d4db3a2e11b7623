"""Domain exceptions. Each message says what was wrong and how to fix it."""


class AmdenError(Exception):
    """Base class of every error raised on purpose by ase_amden."""


class InvalidStructureError(AmdenError, ValueError):
    """An ``ase.Atoms`` that cannot be used: NaN positions, no cell, not periodic, empty."""


class UnknownNameError(AmdenError, KeyError):
    """A name (potential, protocol, element, property, model) that is not known.

    The message lists the valid names.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetFormatError(AmdenError, ValueError):
    """A file that is not, or no longer, a valid ase_amden dataset."""


class CheckpointError(AmdenError, ValueError):
    """A checkpoint of another format or version, or one that is damaged."""


class SamplingError(AmdenError, RuntimeError):
    """Generation failed, e.g. NaN appeared at some diffusion step."""


class RefinementError(AmdenError, RuntimeError):
    """Refinement MD failed: LAMMPS stopped (e.g. lost atoms) or positions became NaN."""


class InvalidArgumentError(AmdenError, ValueError):
    """An argument out of its valid range or of the wrong kind (a count of 0, a NaN cutoff)."""


class ResourceError(AmdenError, MemoryError):
    """A request that would need more memory than the machine has; nothing was allocated."""


class StructureCheckError(AmdenError, RuntimeError):
    """A generated structure failed a strict check (atoms too close, none, wrong composition)."""


def unknown_name(kind: str, name: str, valid) -> UnknownNameError:
    """Build an :class:`UnknownNameError` that lists the valid choices.

    >>> str(unknown_name("potential", "lj", ["sw-si", "eam-cuzr"]))
    "unknown potential 'lj'; valid names are: 'eam-cuzr', 'sw-si'"
    """
    choices = ", ".join(repr(v) for v in sorted(valid))
    return UnknownNameError(f"unknown {kind} {name!r}; valid names are: {choices}")
