"""Experiments that reproduce each paper's central claim; run them with ``varl reproduce``.

Each module exposes ``DESCRIPTION`` and ``run(*, full, seeds, progress) -> ExperimentResult``;
``runner.EXPERIMENTS`` lists them and ``report.py`` writes the report.
"""
