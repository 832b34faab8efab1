// Audit mode: count the kernel launches of chosen processes (the broker picks unmanaged GPU
// processes) with uprobes on libcuda's launch entry points (launch_audit.bpf.c). Nothing is
// attached until audit(pid), and only that process's hits run the program: each audited launch
// costs about 1.35 us (H100, +43% of a launch); other processes pay nothing.
#pragma once

#include <sys/types.h>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "accounting.h"
#include "bpf_status.h"

struct bpf_link;
struct launch_audit_bpf;

namespace fikit::bpf {

// libcuda's launch entry points, audited by default.
extern const std::vector<std::string> kDefaultLaunchFunctions;

struct AuditConfig {
  bool enabled = false;  // fikit-broker --audit-launches
  // The library to probe. Empty: the libcuda.so mapped by each audited process (found in
  // /proc/<pid>/maps when audit() is called, so after the process loaded it).
  std::string library;
  std::vector<std::string> functions;  // empty: kDefaultLaunchFunctions
};

class LaunchAuditor {
 public:
  // Open and load the uprobe program; attach nothing yet.
  static Result<std::unique_ptr<LaunchAuditor>> open(const AuditConfig& config);
  ~LaunchAuditor();
  LaunchAuditor(const LaunchAuditor&) = delete;
  LaunchAuditor& operator=(const LaunchAuditor&) = delete;

  // Count the launches of process `pid`. Return how many entry points were attached; an error
  // when the library is not found or none of the functions could be attached.
  Result<int> audit(pid_t pid);
  // Detach from `pid` and drop its counts. Detaching is slow (the 8 default entry points held a
  // registration reply past 1 s on an H200 host, kernel 6.18; likely an RCU grace period each), so
  // the links are destroyed on a thread of their own: the caller (the broker's control loop,
  // answering a registration) does not wait.
  void end(pid_t pid);
  bool audited(pid_t pid) const { return links_.count(pid) != 0; }

  // Launch counts of `pid` per entry point (only those with launches).
  std::vector<LaunchCount> counts(pid_t pid) const;
  uint64_t drops() const;  // counts lost to a full map
  int program_fd() const;

 private:
  struct LinkDeleter {
    void operator()(bpf_link* link) const;
  };
  struct SkelDeleter {
    void operator()(launch_audit_bpf* skel) const;
  };
  using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

  explicit LaunchAuditor(const AuditConfig& config);
  void forget_counts(pid_t pid) const;

  AuditConfig config_;
  std::unique_ptr<launch_audit_bpf, SkelDeleter> skel_;
  std::map<pid_t, std::vector<LinkPtr>> links_;
  std::vector<std::future<void>> detaching_;  // destroyed first: waits for the detaches
};

}  // namespace fikit::bpf
