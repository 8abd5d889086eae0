"""Outcomes as values and how they read: shared by ``replay``, ``check``, ``demo`` and the plugin.

Modules: ``results`` (``CaseResult`` and JSON/JUnit XML report files), ``check`` (check outcomes
as terminal lines, failure blocks and the JSON report).
"""
