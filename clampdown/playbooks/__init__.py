"""Playbook validation, build-time only: YAML with line numbers (:mod:`.yaml_source`), the JSON Schema
and every semantic check (:mod:`.loader`), and GuardDuty finding-type warnings (:mod:`.type_check`).

It lives outside ``chalicelib`` because Chalice deploys all of ``chalicelib``: the deployed function
reads the bundle that passed these checks and never imports PyYAML or jsonschema.
"""
