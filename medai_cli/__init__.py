"""``medai``: the command line for operators and ML engineers, outside the core ring.

It builds on ``serve_app`` (and starts ``deployments`` through Ray Serve's own CLI); nothing
in either imports it.
"""
