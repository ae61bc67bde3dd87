"""The brain (kpng's word): cluster state + node facts → one view per service port.

Every backend reads these views; none re-derives which endpoints are usable.
"""
