"""Data sets used by the chapters: shipped real embeddings, and the synthetic MAD set (:mod:`gaplab.data.mad`)."""
