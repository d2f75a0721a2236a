"""A fleet: replicas behind an ALB (the view of its replicas, its certificate, rolling rotation)."""
