#include "base/kube_pod.h"

#include <dirent.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace fikit::broker {
namespace {

bool is_hex(const std::string& s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return !s.empty();
}

// 8-4-4-4-12 lowercase hex digits.
bool is_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); i++) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(std::string(1, s[i]))) return false;
  }
  return true;
}

// A DNS-1123 subdomain (pod names; `label`: a DNS-1123 label, as namespaces and containers).
bool is_dns_name(const std::string& s, bool label) {
  if (s.empty() || s.size() > (label ? 63u : 253u)) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || (!label && c == '.')))
      return false;
  return s.front() != '-' && s.back() != '-' && s.front() != '.' && s.back() != '.';
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}

// The container ID in a cgroup path component after the pod's: "<ID>", "<runtime>-<ID>" or
// "<runtime>-<ID>.scope"; "" if it is none (e.g. crio-conmon-<ID>, a container's monitor).
std::string container_of(std::string c) {
  if (c.ends_with(".scope")) c.resize(c.size() - 6);
  for (const char* prefix : {"cri-containerd-", "containerd-", "crio-", "docker-"})
    if (c.starts_with(prefix)) {
      c = c.substr(std::string(prefix).size());
      break;
    }
  return c.size() == 64 && is_hex(c) ? c : "";
}

// The pod UID in a component "pod<UID>" or "...-pod<UID_>.slice" of a kubepods hierarchy.
std::string pod_of(const std::string& c) {
  std::string uid;
  if (c.starts_with("pod")) {
    uid = c.substr(3);
  } else if (c.ends_with(".slice") && c.find("kubepods") != std::string::npos) {
    size_t at = c.rfind("-pod");
    if (at == std::string::npos) return "";
    uid = c.substr(at + 4, c.size() - at - 4 - 6);
    for (char& ch : uid)
      if (ch == '_') ch = '-';  // systemd escapes the UID's '-' as '_'
  }
  return is_uuid(uid) ? uid : "";
}

}  // namespace

KubeRef kube_ref_of_cgroup(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    // "<hierarchy-id>:<controllers>:<path>"; the path may hold ':' only after these two.
    size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos || line.find("kubepods") == std::string::npos) continue;
    std::vector<std::string> parts = split(line.substr(b + 1), '/');
    for (size_t i = 0; i < parts.size(); i++) {
      std::string uid = pod_of(parts[i]);
      if (uid.empty()) continue;
      KubeRef r;
      r.pod_uid = uid;
      if (i + 1 < parts.size()) r.container_id = container_of(parts[i + 1]);
      return r;
    }
  }
  return {};
}

void kube_names(KubeRef* r, const std::string& log_root) {
  if (r->pod_uid.empty()) return;
  // /var/log/containers/<pod>_<namespace>_<container>-<ID>.log: names hold no '_'.
  if (!r->container_id.empty())
    if (DIR* d = opendir((log_root + "/containers").c_str())) {
      const std::string tail = "-" + r->container_id + ".log";
      while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() <= tail.size() || !n.ends_with(tail)) continue;
        std::vector<std::string> f = split(n.substr(0, n.size() - tail.size()), '_');
        if (f.size() == 3 && is_dns_name(f[0], false) && is_dns_name(f[1], true) &&
            is_dns_name(f[2], true)) {
          r->pod = f[0];
          r->ns = f[1];
          r->container = f[2];
          break;
        }
      }
      closedir(d);
    }
  if (!r->pod.empty()) return;
  // /var/log/pods/<namespace>_<pod>_<UID>/.
  if (DIR* d = opendir((log_root + "/pods").c_str())) {
    const std::string tail = "_" + r->pod_uid;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() <= tail.size() || !n.ends_with(tail)) continue;
      std::vector<std::string> f = split(n.substr(0, n.size() - tail.size()), '_');
      if (f.size() == 2 && is_dns_name(f[0], true) && is_dns_name(f[1], false)) {
        r->ns = f[0];
        r->pod = f[1];
        break;
      }
    }
    closedir(d);
  }
}

KubeRef kube_ref_of_pid(pid_t pid, const std::string& log_root) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cgroup");
  std::stringstream ss;
  ss << f.rdbuf();
  KubeRef r = kube_ref_of_cgroup(ss.str());
  kube_names(&r, log_root);
  return r;
}

}  // namespace fikit::broker
