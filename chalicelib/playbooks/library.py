"""A set of playbooks with their patterns compiled into one index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from chalicelib.patterns import PatternSet
from chalicelib.playbooks.model import MODES, Exclusions, Playbook

BUNDLE_FORMAT = 1


class Library:
    """Enabled playbooks are matched through one :class:`PatternSet`; disabled ones are kept for listing."""

    def __init__(self, playbooks: Sequence[Playbook]) -> None:
        self.playbooks = tuple(playbooks)
        self.by_name = {p.name: p for p in self.playbooks}
        self.enabled = tuple(p for p in self.playbooks if p.enabled)
        self.patterns = PatternSet({p.name: p.match for p in self.enabled})
        self.warnings: list[Any] = []

    def __len__(self) -> int:
        return len(self.playbooks)

    def match(self, event: Mapping[str, Any]) -> list[Playbook]:
        """Enabled playbooks whose ``match:`` pattern accepts the event, in library order."""
        return [self.by_name[name] for name in self.patterns.match(event)]

    def event_types(self) -> frozenset[tuple[str, str]]:
        """(source, detail-type) pairs the enabled playbooks' patterns name as exact strings."""
        pairs: set[tuple[str, str]] = set()
        for playbook in self.enabled:
            sources, detail_types = playbook.match.get("source"), playbook.match.get("detail-type")
            if isinstance(sources, list) and isinstance(detail_types, list):
                pairs.update(
                    (source, detail_type)
                    for source in sources
                    if isinstance(source, str)
                    for detail_type in detail_types
                    if isinstance(detail_type, str)
                )
        return frozenset(pairs)

    def to_bundle(self) -> dict[str, Any]:
        """The validated library as plain JSON, for the deployment package."""
        return {
            "format": BUNDLE_FORMAT,
            "playbooks": [{"file": p.file, "document": dict(p.source)} for p in self.playbooks],
        }

    @classmethod
    def from_bundle(cls, bundle: Mapping[str, Any]) -> Library:
        if bundle.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"playbook bundle format {bundle.get('format')!r} is not {BUNDLE_FORMAT}; rebuild it")
        return cls([Playbook.from_dict(item["document"], file=item.get("file", "")) for item in bundle["playbooks"]])

    def with_overrides(self, overrides: Mapping[str, Any]) -> Library:
        """Per-environment tuning without editing shipped files (a stage's ``CLAMPDOWN_OVERRIDES``).

        ``{"disable": [names], "modes": {name: mode}, "exclude": {...exclusions for every playbook...}}``
        """
        unknown = set(overrides) - {"disable", "modes", "exclude"}
        if unknown:
            raise ValueError(f"unknown override keys: {', '.join(sorted(unknown))} (use disable, modes, exclude)")
        disable = set(overrides.get("disable", ()))
        modes = dict(overrides.get("modes", {}))
        for name in (disable | set(modes)) - set(self.by_name):
            raise ValueError(f"override names unknown playbook {name!r}")
        for name, mode in modes.items():
            if mode not in MODES:
                raise ValueError(f"override mode {mode!r} for {name} is not one of {', '.join(MODES)}")
        extra = Exclusions.from_dict(overrides.get("exclude"))
        playbooks = [
            replace(
                p,
                enabled=p.enabled and p.name not in disable,
                mode=modes.get(p.name, p.mode),
                exclude=p.exclude.merged(extra),
            )
            for p in self.playbooks
        ]
        return Library(playbooks)
