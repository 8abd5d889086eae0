"""Load from many machines on Locust: a user class sending scenario notifications (``d1sim[load]``).

``lanes`` splits a scenario's deliveries into per-card groups and shares them among Locust
workers (worker i takes every N-th group, so per-card order holds); ``locustfile`` is the user
class that ``d1sim load`` (or ``locust -f``) runs. Locust is imported only here, never elsewhere.
"""
