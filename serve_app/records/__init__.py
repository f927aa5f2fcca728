"""Plain records of what the platform did, each stored with its audit entry."""
