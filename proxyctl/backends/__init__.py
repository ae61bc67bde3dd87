"""One compiler per proxy mode: pure functions from service port views to a typed ruleset."""
