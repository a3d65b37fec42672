//! The kubelet's HTTPS endpoint (port 10250): containerLogs, exec, attach
//! and portForward, reached by the API server with its client certificate.
