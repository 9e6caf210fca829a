"""Data sets used by the chapters: shipped real embeddings (and, later, the synthetic MAD set)."""
