"""The runbook engine: steps, runner, workspace, journal, lock, checks, report.

Modules (import them directly; this package imports nothing, to keep start-up cheap):
``workspace`` (Workspace, atomic_write, the lock), ``journal`` (hash-chained journal.jsonl),
``redact`` (what never reaches a file or a log), ``step`` (Step, Runbook, Context),
``runner`` (Runner), ``checks`` (Check, CheckSet, evaluate), ``report`` (report.json/.md),
``status`` (`cfy upgrade status`), ``output`` (transfer progress).
"""
