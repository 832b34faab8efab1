// Which Kubernetes pod and container a tenant runs in, for the metrics' pod, namespace and
// container labels (docs/STATUS.md "Metrics"). Found at registration from what the tenant cannot
// forge: its cgroup path (/proc/<pid>/cgroup, written by the kernel) names the pod's UID and the
// container's ID, under both kubelet cgroup drivers:
//   cgroupfs: .../kubepods[/burstable|/besteffort]/pod<UID>/[<runtime>-]<ID>
//   systemd:  .../kubepods[-<qos>]-pod<UID_with_underscores>.slice/<runtime>-<ID>.scope
// (runtime prefixes cri-containerd, containerd, crio, docker); then the kubelet's log links on
// the host, /var/log/containers/<pod>_<namespace>_<container>-<ID>.log, name the pod, its
// namespace and the container (else /var/log/pods/<namespace>_<pod>_<UID>/ the first two).
// Every value is checked (a UUID, 64 hex digits, DNS names) before it becomes a label.
#pragma once

#include <sys/types.h>

#include <string>

namespace fikit::broker {

struct KubeRef {
  std::string pod_uid;       // "" when the tenant is in no pod
  std::string container_id;  // 64 hex digits, or ""
  std::string pod;           // names, "" when the kubelet's logs do not say
  std::string ns;
  std::string container;
};

// The pod UID and container ID in a /proc/<pid>/cgroup text (none: both "").
KubeRef kube_ref_of_cgroup(const std::string& cgroup_text);
// Fill r's names from the kubelet's log directories under `log_root` (/var/log on a node).
void kube_names(KubeRef* r, const std::string& log_root);
// Both, for process `pid` (a tenant at registration).
KubeRef kube_ref_of_pid(pid_t pid, const std::string& log_root = "/var/log");

}  // namespace fikit::broker
