"""The runbook engine: steps, runner, workspace, journal, lock, checks, report."""
