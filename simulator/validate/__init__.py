"""``d1sim validate``: check notification files (JSON, JSON Lines, stdin) against the contract.

Data flows ``reader`` (expand paths, globs and ``-`` into sources) -> ``pipeline`` (small inputs
in process; big ones cut into ``chunks`` checked by ``workers`` processes) -> ``run`` (one
``Validation``: problems in input order, counts, the cross-input lifecycle state), which
``spill`` keeps on disk past a bound, so memory does not grow with the number of cards.
"""
