"""Playbooks: the YAML format (:mod:`.model`), validation (:mod:`.loader`, build-time only: it imports
PyYAML and jsonschema), templates (:mod:`.template`) and the compiled library (:mod:`.library`).

The deployed function reads a bundle that passed validation, so it never pays for the loader.
"""

from chalicelib.playbooks.model import Conditions, Exclusions, Playbook, Step, strictest

__all__ = ["Conditions", "Exclusions", "Playbook", "Step", "strictest"]
