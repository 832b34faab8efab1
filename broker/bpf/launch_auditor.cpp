#include "launch_auditor.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>
#include <system_error>

#include "bpf_env.h"
#include "fikit_bpf_common.h"  // before the skeleton: it names the struct types
#include "launch_audit.h"
#include "launch_audit.skel.h"
#include "map_helpers.h"

namespace fikit::bpf {

const std::vector<std::string> kDefaultLaunchFunctions = {
    "cuLaunchKernel",        "cuLaunchKernel_ptsz",       "cuLaunchKernelEx",
    "cuLaunchKernelEx_ptsz", "cuLaunchCooperativeKernel", "cuLaunchCooperativeKernel_ptsz",
    "cuGraphLaunch",         "cuGraphLaunch_ptsz",
};

void LaunchAuditor::LinkDeleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }
void LaunchAuditor::SkelDeleter::operator()(launch_audit_bpf* skel) const {
  launch_audit_bpf__destroy(skel);
}

LaunchAuditor::LaunchAuditor(const AuditConfig& config) : config_(config) {
  if (config_.functions.empty()) config_.functions = kDefaultLaunchFunctions;
}

LaunchAuditor::~LaunchAuditor() = default;

Result<std::unique_ptr<LaunchAuditor>> LaunchAuditor::open(const AuditConfig& config) {
  std::unique_ptr<LaunchAuditor> a(new LaunchAuditor(config));
  // Open and load; uprobes are attached per audited process later.
  a->skel_.reset(launch_audit_bpf__open());
  if (!a->skel_) return errno_status(errno, "open the launch-audit BPF object");
  if (int err = launch_audit_bpf__load(a->skel_.get()))
    return errno_status(err, "load the launch-audit BPF program");
  return a;
}

Result<int> LaunchAuditor::audit(pid_t pid) {
  if (audited(pid)) return static_cast<int>(links_[pid].size());
  std::string library = config_.library;
  if (library.empty()) {
    Result<std::string> found = mapped_library(pid, "libcuda.so");
    if (!found.ok()) return found.status();
    library = found.value();
  }
  std::vector<LinkPtr> links;
  int last_err = 0;
  for (size_t i = 0; i < config_.functions.size(); i++) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = i, .func_name = config_.functions[i].c_str());
    bpf_link* link =
        bpf_program__attach_uprobe_opts(skel_->progs.fikit_launch, pid, library.c_str(), 0, &opts);
    if (!link) {
      last_err = errno;  // a missing entry point (older libcuda) is not an error by itself
      continue;
    }
    links.emplace_back(link);
  }
  if (links.empty())
    return errno_status(last_err ? last_err : ENOENT,
                        "attach launch uprobes to " + library + " for pid " + std::to_string(pid));
  const int n = static_cast<int>(links.size());
  links_[pid] = std::move(links);
  return n;
}

void LaunchAuditor::end(pid_t pid) {
  forget_counts(pid);
  auto it = links_.find(pid);
  if (it == links_.end()) return;
  std::vector<LinkPtr> links = std::move(it->second);
  links_.erase(it);
  std::erase_if(detaching_, [](const std::future<void>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  });
  // Launches made while the uprobes come off count again: forget those too once they are off.
  auto detach = [this, pid, l = std::move(links)]() mutable {
    l.clear();
    forget_counts(pid);
  };
  try {
    detaching_.push_back(std::async(std::launch::async, std::move(detach)));
  } catch (const std::system_error&) {
    detach();  // no thread: detach here (slow, not wrong)
  }
}

void LaunchAuditor::forget_counts(pid_t pid) const {
  const int fd = bpf_map__fd(skel_->maps.fikit_launches);
  for (size_t i = 0; i < config_.functions.size(); i++) {
    fikit_launch_key key{static_cast<__u32>(pid), static_cast<__u32>(i)};
    bpf_map_delete_elem(fd, &key);
  }
}

std::vector<LaunchCount> LaunchAuditor::counts(pid_t pid) const {
  std::vector<LaunchCount> out;
  const int fd = bpf_map__fd(skel_->maps.fikit_launches);
  for (size_t i = 0; i < config_.functions.size(); i++) {
    fikit_launch_key key{static_cast<__u32>(pid), static_cast<__u32>(i)};
    __u64 count = 0;
    if (bpf_map_lookup_elem(fd, &key, &count) == 0 && count)
      out.push_back({config_.functions[i], count});
  }
  return out;
}

uint64_t LaunchAuditor::drops() const {
  return percpu_sum(bpf_map__fd(skel_->maps.fikit_launch_drops), 0);
}

int LaunchAuditor::program_fd() const { return bpf_program__fd(skel_->progs.fikit_launch); }

}  // namespace fikit::bpf
