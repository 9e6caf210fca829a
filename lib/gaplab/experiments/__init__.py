"""Experiments that combine trained runs, metrics and real embeddings into a chapter's findings.

- :mod:`~gaplab.experiments.closing`: closing the gap on MAD with the mean gap vector and ideal words
  (Schrodi et al. 2025, Table 5);
- :mod:`~gaplab.experiments.organisation`: the organisation test over the MAD grid, with seed and
  shuffled-label controls (Schrodi et al. 2025, Table 2);
- :mod:`~gaplab.experiments.landscape`: Liang et al.'s (2022) loss landscape along the gap direction.
"""
