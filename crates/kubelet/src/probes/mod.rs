//! Container probes: exec (through CRI ExecSync), httpGet and tcpSocket,
//! for liveness, readiness and startup.
