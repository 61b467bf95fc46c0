"""Pruning criteria: one module per criterion, each a ``compression.prune.Criterion`` named by
``_target_`` in ``conf/prune/criterion/<name>.yaml``."""
