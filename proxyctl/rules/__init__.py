"""The vocabulary at the bottom: typed rulesets that render to, and parse from, the kernel tools' text.

Nothing here imports anything else of proxyctl, performs I/O, or logs.
"""
