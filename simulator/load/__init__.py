"""Load from many machines on Locust: a user class sending scenario notifications (``d1sim[load]``)."""
