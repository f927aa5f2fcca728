"""Splitting an endpoint's traffic between model versions (A/B arms, shadows)."""
