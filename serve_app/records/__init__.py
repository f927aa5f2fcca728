"""Plain records stored with an audit entry, in the entry's transaction: what callers
hand the audit trail beside the event (picklable: they cross Ray hops)."""
