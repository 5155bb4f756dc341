"""Clampdown's command line: validate and simulate playbooks, run the demo, operate a deployment."""

__version__ = "0.1.0"
