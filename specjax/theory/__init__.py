"""The paper's mathematics beside the simulation: closed forms, Lemma 1, theorem reports, the population flow."""

from specjax.theory import closed_forms, lemma1, population, reports

__all__ = ["closed_forms", "lemma1", "population", "reports"]
