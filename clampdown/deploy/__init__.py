"""Build-time helpers for deploying Clampdown: bundle, IAM policies, EventBridge rules, templates.

Used by the CLI (``clampdown bundle|policy|rules|package``); the deployed function never imports
this package (it ships inside ``chalicelib/`` only because Chalice packages the whole folder).
"""
