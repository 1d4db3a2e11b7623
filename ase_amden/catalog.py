"""The shipped models: what each can do and how good it measured (``ase-amden models``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ase_amden.models.card import ModelCard

__all__ = ["ModelDetails", "format_details", "model_details", "read_quality_table"]


@dataclass
class ModelDetails:
    """What one model can do and how good it measured.

    Attributes
    ----------
    name
        Model name (``AmorphousGenerator.pretrained(name)``).
    elements
        Chemical symbols it generates.
    kind
        What kind of model: noise prediction or flow, energy-based, ghost atoms (density
        and composition decided by the network), fixed composition, shortcut.
    properties
        Conditioning properties: ``{"name", "unit", "trained_range"}`` each;
        ``trained_range`` is ``[low, high]`` in the unit, or None where the card does not
        record it (then ``mean`` and ``std`` of the training values are given).
    sampler, steps
        The default sampler and number of steps (``card.sampling``, else ``sde``).
    targets
        The property targets used when the caller gives none (``card.sampling``).
    quality
        Measured quality, ``{metric: value}`` (``card.quality``, else the table of
        ``pretrained/README.md``); empty when not measured.

    """

    name: str
    elements: list[str]
    kind: list[str]
    properties: list[dict[str, Any]]
    sampler: str
    steps: int
    quality: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)


def _kind(card: ModelCard) -> list[str]:
    kind = ["flow matching" if card.objective == "flow" else "noise prediction"]
    if card.energy:
        kind.append("energy-based (hmc sampler, NoiseEnergyCalculator)")
    if card.shortcut:
        kind.append("shortcut (few steps)")
    if card.fixed_composition:
        kind.append("fixed composition (positions only)")
    elif card.rho_max is not None:
        kind.append(f"ghost atoms (the network decides the atoms; rho_max {card.rho_max:.4g} "
                    "atoms/Å^3)")
    else:
        kind.append("atom count given by the caller")
    return kind


def _properties(card: ModelCard) -> list[dict[str, Any]]:
    properties = []
    for i, name in enumerate(card.property_names):
        unit = card.property_units[i] if card.property_units else ""
        entry: dict[str, Any] = {"name": name, "unit": unit, "trained_range": None}
        if card.property_range:
            low, high = card.property_range[i]
            if card.is_log10(i):
                low, high = 10.0**low, 10.0**high
            entry["trained_range"] = [float(low), float(high)]
        else:
            mean, std = card.property_mean[i], card.property_std[i]
            if card.is_log10(i):
                mean, std = 10.0**mean, math.nan  # a log-normal spread has no plain std
            entry.update(mean=float(mean), std=float(std))
        properties.append(entry)
    return properties


def read_quality_table(text: str | None = None) -> dict[str, dict[str, str]]:
    """The "Measured quality" table of ``pretrained/README.md``: ``{model: {column: value}}``.

    Read with :mod:`importlib.resources`, so it works from an installed wheel. Empty cells
    are left out.
    """
    if text is None:
        text = resources.files("ase_amden").joinpath("pretrained/README.md").read_text("utf-8")
    section = text.split("## Measured quality", 1)
    if len(section) < 2:
        return {}
    rows = [line.strip() for line in section[1].splitlines() if line.strip().startswith("|")]
    if len(rows) < 2:
        return {}
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    header = cells[0][1:]
    table = {}
    for row in cells[2:]:
        table[row[0]] = {k: v for k, v in zip(header, row[1:], strict=False) if v}
    return table


def model_details(path: str | Path, quality_table: dict[str, dict[str, str]] | None = None
                  ) -> ModelDetails:
    """Details of the model stored at ``path`` (a checkpoint or shipped ``.pt`` file)."""
    from ase_amden.diffusion.samplers import SAMPLERS
    from ase_amden.training import load_checkpoint

    card = load_checkpoint(path, device="cpu").card
    sampling = card.sampling or {}
    sampler = sampling.get("sampler", "sde")
    steps = sampling.get("steps") or SAMPLERS[sampler].default_steps
    quality = dict(card.quality) if card.quality else dict(
        (quality_table if quality_table is not None else read_quality_table()).get(card.name, {})
    )
    return ModelDetails(name=card.name, elements=list(card.elements), kind=_kind(card),
                        properties=_properties(card), sampler=sampler, steps=int(steps),
                        quality=quality, targets=dict(sampling.get("targets", {})))


def format_details(details: ModelDetails) -> str:
    """A few readable lines about one model."""
    lines = [f"{details.name}: {', '.join(details.elements)}; {'; '.join(details.kind)}",
             f"  default sampler: {details.sampler}, {details.steps} steps"]
    if details.targets:
        given = ", ".join(f"{k} = {v:g}" for k, v in details.targets.items())
        lines.append(f"  default targets: {given}")
    if not details.properties:
        lines.append("  properties: none (unconditional)")
    for prop in details.properties:
        unit = f" {prop['unit']}" if prop["unit"] else ""
        if prop["trained_range"] is not None:
            low, high = prop["trained_range"]
            span = f"trained on {low:.4g} to {high:.4g}{unit}"
        else:
            span = (f"range not recorded in the card; training mean {prop['mean']:.4g}{unit}, "
                    f"std {prop['std']:.3g}{unit}")
        lines.append(f"  property {prop['name']} [{prop['unit'] or 'dimensionless'}]: {span}")
    if details.quality:
        measured = "; ".join(f"{k} {v}" for k, v in details.quality.items())
        lines.append(f"  measured: {measured}")
    else:
        lines.append("  measured: not measured")
    return "\n".join(lines)
