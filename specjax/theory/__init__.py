"""The paper's mathematics beside the simulation: closed forms, Lemma 1, observers, theorem reports, population flow."""

from specjax.theory import closed_forms, lemma1, observers, population, reports, theorem3, theorem5

__all__ = ["closed_forms", "lemma1", "observers", "population", "reports", "theorem3", "theorem5"]
