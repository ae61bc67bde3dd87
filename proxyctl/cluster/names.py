"""Name and label syntax, as the Kubernetes API server checks it.

Each ``is_*`` function returns a list of error strings: empty when the value is valid. The
patterns are ASCII-only and matched against the whole string (``re.fullmatch``), so no
accepted value can hold whitespace, a quote, a newline or any other control character.

Which object field uses which rule (from the API server's validation):

==========================================  ==========================
Service name                                DNS-1035 label
Namespace name                              DNS-1123 label
Service port name, EndpointSlice port name  DNS-1123 label
Endpoints port name                         DNS-1123 label
targetPort given as a name                  IANA service name (is_port_name)
EndpointSlice, Endpoints, Node names        DNS-1123 subdomain
endpoint nodeName, hints.forNodes[].name    DNS-1123 subdomain
label keys, taint keys                      qualified name
label values, hints.forZones[].name         label value
==========================================  ==========================
"""

from __future__ import annotations

import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
PORT_NAME_MAX = 15
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63

_LABEL_1123 = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_LABEL_1123)
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL_1123}(?:\.{_LABEL_1123})*")
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")
_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+")
_QUALIFIED_NAME_PART = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")


def _too_long(value: str, limit: int) -> list[str]:
    return [f"must be at most {limit} characters (has {len(value)})"] if len(value) > limit else []


def is_dns1123_label(value: str) -> list[str]:
    """A lowercase RFC 1123 label: namespaces, port names."""
    errors = _too_long(value, DNS1123_LABEL_MAX)
    if not _DNS1123_LABEL.fullmatch(value):
        errors.append("must be lowercase letters, digits and '-', starting and ending with a letter "
                      "or digit (e.g. 'my-name' or '123-abc')")
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    """A lowercase RFC 1123 subdomain: EndpointSlice and Node names."""
    errors = _too_long(value, DNS1123_SUBDOMAIN_MAX)
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append("must be lowercase letters, digits, '-' and '.', each '.'-separated part "
                      "starting and ending with a letter or digit (e.g. 'example.com')")
    return errors


def is_dns1035_label(value: str) -> list[str]:
    """A lowercase RFC 1035 label: Service names."""
    errors = _too_long(value, DNS1035_LABEL_MAX)
    if not _DNS1035_LABEL.fullmatch(value):
        errors.append("must be lowercase letters, digits and '-', starting with a letter and ending "
                      "with a letter or digit (e.g. 'my-name' or 'abc-123')")
    return errors


def is_port_name(value: str) -> list[str]:
    """An IANA service name (RFC 6335, lowercase only): a container port or targetPort by name."""
    errors = _too_long(value, PORT_NAME_MAX)
    if not _PORT_NAME_CHARS.fullmatch(value):
        errors.append("must be lowercase letters, digits and '-' only")
    if not any("a" <= c <= "z" for c in value):
        errors.append("must contain at least one letter (a-z)")
    if "--" in value:
        errors.append("must not contain '--'")
    if value.startswith("-") or value.endswith("-"):
        errors.append("must not start or end with '-'")
    return errors


def is_qualified_name(value: str) -> list[str]:
    """A label or taint key: an optional DNS-1123 subdomain prefix and '/', then a name part."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["must have at most one '/' (an optional prefix, then a name)"]
    errors: list[str] = []
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("the prefix before '/' must not be empty")
        else:
            errors.extend(f"prefix {msg}" for msg in is_dns1123_subdomain(prefix))
    else:
        name = parts[0]
    if not name:
        errors.append("the name part must not be empty")
        return errors
    errors.extend(_too_long(name, QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_PART.fullmatch(name):
        errors.append("the name part must be letters, digits, '-', '_' and '.', starting and ending "
                      "with a letter or digit (e.g. 'MyName', 'my.name' or '123-abc')")
    return errors


def is_label_value(value: str) -> list[str]:
    """A label value: empty, or up to 63 letters, digits, '-', '_' and '.' between alphanumerics."""
    errors = _too_long(value, LABEL_VALUE_MAX)
    if value and not _QUALIFIED_NAME_PART.fullmatch(value):
        errors.append("must be empty or letters, digits, '-', '_' and '.', starting and ending with "
                      "a letter or digit (e.g. 'MyValue', 'my_value' or '12345')")
    return errors
