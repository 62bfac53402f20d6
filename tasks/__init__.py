"""Prefect tasks: the deploy steps, each with inspect (plan, read-only) and apply (act)."""
