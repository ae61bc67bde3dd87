"""Cluster objects (Services, EndpointSlices, Nodes) and the sources that yield them."""
