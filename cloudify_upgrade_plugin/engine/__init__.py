"""The runbook engine: steps, runner, workspace, journal, checks, report, command skeleton.

Modules (import them directly; this package imports nothing, to keep start-up cheap):
``workspace`` (Workspace and its lock), ``journal`` (hash-chained journal.jsonl),
``redact`` (what never reaches a file or a log), ``step`` (Step, Runbook, Context),
``runner`` (Runner), ``checks`` (Check, CheckSet, CheckRegistry, Waiver, evaluate),
``summary`` (where an upgrade stands, from its workspace), ``report`` (report.json/.md),
``command`` (Command: checks -> runner -> report -> render, and its Outcome).
"""
