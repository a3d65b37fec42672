//! Pod volumes: emptyDir (disk and Memory), secret, configMap, projected,
//! downwardAPI and hostPath, materialised under the pod's directory and
//! turned into CRI mounts for each container.
