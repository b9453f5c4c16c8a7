"""Playbooks as code: plays, tasks and their measured impact."""
