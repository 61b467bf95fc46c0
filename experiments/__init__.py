"""Hydra + Lightning glue and the analysis scripts."""
