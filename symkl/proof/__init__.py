"""symkl's trusted kernel: claims, provers, sampling, numerics, verdicts.

Read it in this order: :mod:`~symkl.proof.claims` (what a claim is, what
enters), :mod:`~symkl.proof.provers` (symbolic rules and their side
conditions), :mod:`~symkl.proof.sampling` and :mod:`~symkl.proof.numerics`
(the numeric side), :mod:`~symkl.proof.kernel` (the verdict),
:mod:`~symkl.proof.lemmas` (the named lemmas assumed for symbolic ``k``).  Nothing outside
this package can make a claim pass.
"""

from symkl.proof.claims import Claim, ClaimError, FloatError, admit, format_sizes, instantiate
from symkl.proof.kernel import (
    NumericResult,
    Settings,
    StepCheck,
    VerificationReport,
    chain,
    check,
    check_step,
    is_genuine,
)
from symkl.proof.lemmas import LEMMAS, ByLemma, ByLemmas, Lemma, lemma_evidence
from symkl.proof.numerics import evaluate
from symkl.proof.provers import (
    AtSizes,
    ExpandFunctions,
    Generic,
    InstanceOf,
    Prover,
    Series,
    SymbolicResult,
    Theorem,
    Whitened,
    dominated,
    is_zero,
)

__all__ = [
    "LEMMAS", "AtSizes", "ByLemma", "ByLemmas", "Claim", "ClaimError", "ExpandFunctions",
    "FloatError", "Generic", "InstanceOf", "Lemma", "NumericResult", "Prover", "Series",
    "Settings", "StepCheck", "SymbolicResult", "Theorem", "VerificationReport", "Whitened",
    "admit", "chain", "check", "check_step", "dominated", "evaluate", "format_sizes",
    "instantiate", "is_genuine", "is_zero", "lemma_evidence",
]  # fmt: skip
