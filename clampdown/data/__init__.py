"""Reference data shipped with Clampdown (read by tooling, never on the responder's hot path)."""
