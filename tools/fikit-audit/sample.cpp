#include "sample.h"

#include <dirent.h>
#include <fcntl.h>
#include <fikit/abi.h>
#include <fikit/util.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace fikit::audit {
namespace {

constexpr const char* kProgramPrefix = "fikit_";
constexpr const char* kCountersMap = "fikit_counters";
constexpr const char* kBrokerComm = "fikit-broker";

// Read the client counters of the fikit segment at `path`; false if it is not one.
bool read_segment(const std::string& path, TenantSample* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  const size_t head = offsetof(Segment, client) + sizeof(ClientCounters);
  void* map = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) >= head)
    map = mmap(nullptr, head, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return false;
  const auto* seg = static_cast<const Segment*>(map);
  const bool ours = seg->hdr.magic == kSegmentMagic && seg->hdr.abi_major == kAbiMajor &&
                    seg->hdr.header_size == sizeof(SegmentHeader);
  if (ours) {
    out->pid = seg->hdr.owner_pid;
    out->name.assign(seg->hdr.name, strnlen(seg->hdr.name, kNameLen));
    out->priority = seg->hdr.priority;
    out->launches = seg->client.launches.load(std::memory_order_relaxed);
    out->passed_through = seg->client.passed_through.load(std::memory_order_relaxed);
    out->dropped = seg->client.dropped.load(std::memory_order_relaxed);
    out->markers = seg->client.markers.load(std::memory_order_relaxed);
  }
  munmap(map, head);
  return ours;
}

// Tenants: the segments each broker maps. They are sealed memfds without a name in /dev/shm; the
// broker's /proc/<pid>/maps lists them as "/memfd:fikit-segment (deleted)", and root opens each
// through /proc/<pid>/map_files/<range>.
void sample_tenants_of(pid_t broker, std::vector<TenantSample>* out) {
  const std::string proc = "/proc/" + std::to_string(broker);
  std::ifstream maps(proc + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("/memfd:fikit-segment") == std::string::npos) continue;
    TenantSample t;
    if (read_segment(proc + "/map_files/" + line.substr(0, line.find(' ')), &t)) out->push_back(t);
  }
}

// Return utime + stime of process `pid` from /proc/<pid>/stat, or false.
bool cpu_ticks(pid_t pid, uint64_t* ticks) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream fields(stat.substr(paren + 2));  // from field 3 (state) on
  std::string f;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; i++) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  *ticks = utime + stime;
  return true;
}

std::vector<BrokerSample> sample_brokers() {
  std::vector<BrokerSample> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (dirent* d = readdir(dir)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(d->d_name));
    if (pid <= 0) continue;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    BrokerSample b{pid, 0};
    if (std::getline(comm, name) && name == kBrokerComm && cpu_ticks(pid, &b.cpu_ticks))
      out.push_back(b);
  }
  closedir(dir);
  return out;
}

}  // namespace

bpf::Result<Sample> take_sample(const std::vector<uint32_t>& program_ids) {
  Sample s;
  s.t_ns = now_ns();
  bpf::Result<std::vector<bpf::ProgramSample>> programs =
      bpf::sample_programs(kProgramPrefix, program_ids);
  if (!programs.ok()) return programs.status();
  s.programs = std::move(programs.value());
  for (const bpf::ProgramSample& p : s.programs) {
    if (p.name != "fikit_ioctl_in") continue;  // each observer has one counters map
    bpf::Result<std::vector<uint64_t>> c = bpf::read_counter_map(p.map_ids, kCountersMap);
    if (c.ok()) s.counters[p.id] = std::move(c.value());
  }
  s.brokers = sample_brokers();
  for (const BrokerSample& b : s.brokers) sample_tenants_of(b.pid, &s.tenants);
  return s;
}

}  // namespace fikit::audit
