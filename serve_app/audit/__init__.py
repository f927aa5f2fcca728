"""The tamper-evident audit trail: a SHA-256 hash chain (``chain``), signed checkpoints
kept outside the database (``checkpoints``), the group-commit store (``store``) and the
single writer's checkpoint policy (``writer``).
"""
