"""The benchmark: ``python -m specjax.bench`` measures run-steps/s, peak fraction and baselines."""
