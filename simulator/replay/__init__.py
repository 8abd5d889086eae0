"""``d1sim replay``: play scenarios against a receiver and judge what it ends up holding.

Modules: ``run`` (resolve scenarios, expand them into the outbox, deliver, compare the
receiver's state with the expectations), ``output`` (progress bars, summary table, reports).
"""
