"""A cluster of kernlb nodes: shared state on PostgreSQL, VIPs by keepalived, connections by
conntrackd (docs/cluster.md)."""
