"""Kernel forms: what a task is, recognised once after binding and carried with the task.

Every backend lowers from these target-neutral descriptions instead of re-reading loop nests:
``Map`` (element-wise loop nests and stencils), ``Contraction`` (matrix products),
``Reduction`` (folds along a dimension and the element-wise work that uses them: softmax, norms),
``Lookup`` (gathers through a key, ``search`` and a reduction), and ``Scalar`` (anything else).
The block decompositions backends spread them with live here too (``blocks``, ``bands``).
"""

from __future__ import annotations

from kernelc.forms.contraction import Contraction, recognise_contraction
from kernelc.forms.lookup import BandSite, Lookup, recognise_lookup
from kernelc.forms.map import Map, recognise_map
from kernelc.forms.reduction import Reduction, recognise_reduction
from kernelc.forms.scalar import Scalar
from kernelc.graph import Task

Form = Map | Contraction | Reduction | Lookup | Scalar

RECOGNISERS = (  # first match wins
    recognise_map,
    recognise_contraction,
    recognise_reduction,
    recognise_lookup,
)

__all__ = ["BandSite", "Contraction", "Form", "Lookup", "Map", "Reduction", "Scalar", "recognise"]


def recognise(task: Task) -> Form:
    """The first form that describes the task; ``Scalar`` when none does."""
    for recogniser in RECOGNISERS:
        form = recogniser(task)
        if form is not None:
            return form
    return Scalar(f"'{task.kernel.name}' is no data-parallel loop nest, matrix product or lookup")
