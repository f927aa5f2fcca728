"""Who is calling and what they may do: JWT verification, roles, secrets."""
