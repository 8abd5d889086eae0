"""``d1sim replay``: play scenarios against a receiver and judge what it ends up holding.

Modules: ``run`` (resolve scenarios, expand them into the outbox, deliver, compare the
receiver's state with the expectations), ``output`` (progress bars, summary table, reports),
``planning`` (a plan made while it is sent), ``writer`` (the process that plans, stores and
commits the attempts during a replay at time scale 0), ``ahead`` (that process started with the
command line).
"""
