"""Run the platform as separate processes: a supervisor, the gateway, a local cluster.

`supervisor` starts, probes and stops processes by PID; `gateway` renders the
nginx configuration; `local` lays out and runs every service on loopback for
`atalaia up`, `status` and `down`.
"""
