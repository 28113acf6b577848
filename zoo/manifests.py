"""YAML text for deployment files (docker compose, Kubernetes), built as data and dumped."""

from __future__ import annotations

from typing import Any

import yaml


class _PlainDumper(yaml.SafeDumper):
    """Repeated values written out in full: no YAML anchors for a reader to chase."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(document: dict[str, Any]) -> str:
    """One document, keys in the order given."""
    return yaml.dump(
        document, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, width=100
    )
