"""YAML mappings that refuse a repeated key, as kubectl does, instead of keeping the last one.

Shared by the node facts file and the manifest loader so the two read YAML alike; the
configuration keeps its own loader because kube-proxy reports repeated keys there as warnings.
"""

from __future__ import annotations

import yaml


class RefuseDuplicateKeys:
    """Mixin for a PyYAML loader: a repeated scalar key is a ConstructorError at its position."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue  # "<<" is merged by the base class; other keys fail there
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


class StrictSafeLoader(RefuseDuplicateKeys, yaml.SafeLoader):
    pass


class StrictFastLoader(RefuseDuplicateKeys, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same on libyaml when PyYAML has it: manifests can be large."""
