// libfikit.so preloaded into a program linked to the simulated libcuda (this test binary, re-run
// as a child with LD_PRELOAD): launches reached directly, through cuGetProcAddress and through
// dlsym are all intercepted; without a broker they pass through; with a fake broker speaking the
// control protocol they follow the HP path (records, sampled markers written by the simulated GPU,
// drains) or the LP path (requests, grants, launches, markers); the client reconnects when the
// broker drops it.
#include <cuda.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fikit/client.h>
#include <fikit/fd_passing.h>
#include <fikit/protocol.h>
#include <fikit/ring.h>
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fikit {
namespace {

constexpr uint64_t kDeadlineNs = 30'000'000'000ull;

// ---------------------------------------------------------------------------------------------
// Child side: runs only under LD_PRELOAD, started by the parent tests below.

const char* t_child_mode() { return getenv("FIKIT_TEST_CHILD"); }

using StatsFn = void (*)(fikit_client_stats*);
using ConnectedFn = int (*)();

fikit_client_stats t_stats() {
  auto fn = reinterpret_cast<StatsFn>(dlsym(RTLD_DEFAULT, "fikit_get_stats"));
  fikit_client_stats s{};
  if (fn) fn(&s);
  return s;
}

bool t_from_libfikit(void* fn) {
  Dl_info info{};
  return dladdr(fn, &info) && info.dli_fname && strstr(info.dli_fname, "libfikit.so");
}

struct t_Gpu {
  CUfunction spin = nullptr;
  CUstream stream = nullptr;
  uint64_t duration_ns = 20000, tag = 0;
  void* params[2] = {&duration_ns, &tag};

  void init() {
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    static const char kImage[] = "fake module image";
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuDeviceGet(&dev, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleLoadData(&mod, kImage), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleGetFunction(&spin, mod, "spin"), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamCreate(&stream, 0), CUDA_SUCCESS);
  }
  void launch_direct(int n) {
    for (int i = 0; i < n; i++)
      ASSERT_EQ(cuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, nullptr, params, nullptr), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamSynchronize(nullptr), CUDA_SUCCESS);
  }
};

// 5 direct launches (slot 0), 3 through cuGetProcAddress per-thread (slot 1), 2 through dlsym on a
// created stream; syncs in between; checks that every path handed out libfikit's hooks.
void t_child_workload(t_Gpu& g) {
  g.launch_direct(5);

  void* p = nullptr;
  CUdriverProcAddressQueryResult st;
  ASSERT_EQ(cuGetProcAddress("cuLaunchKernel", &p, 12000,
                             CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st),
            CUDA_SUCCESS);
  ASSERT_TRUE(t_from_libfikit(p)) << "cuGetProcAddress did not hand out the hook";
  EXPECT_EQ(p, dlsym(RTLD_DEFAULT, "cuLaunchKernel_ptsz"));
  auto launch_ptsz = reinterpret_cast<decltype(&cuLaunchKernel)>(p);
  for (int i = 0; i < 3; i++)
    ASSERT_EQ(launch_ptsz(g.spin, 2, 1, 1, 64, 1, 1, 0, nullptr, g.params, nullptr), CUDA_SUCCESS);
  void* gpa = nullptr;
  ASSERT_EQ(cuGetProcAddress("cuGetProcAddress", &gpa, 12000, 0, &st), CUDA_SUCCESS);
  EXPECT_TRUE(t_from_libfikit(gpa)) << "asking for cuGetProcAddress must return the hook";
  void* sync_ptsz = nullptr;
  ASSERT_EQ(reinterpret_cast<decltype(&cuGetProcAddress)>(gpa)(
                "cuStreamSynchronize", &sync_ptsz, 12000,
                CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st),
            CUDA_SUCCESS);
  ASSERT_TRUE(t_from_libfikit(sync_ptsz));
  ASSERT_EQ(reinterpret_cast<CUresult (*)(CUstream)>(sync_ptsz)(nullptr), CUDA_SUCCESS);
  void* alloc = nullptr;
  ASSERT_EQ(cuGetProcAddress("cuMemAlloc", &alloc, 12000, 0, &st), CUDA_SUCCESS);
  EXPECT_FALSE(t_from_libfikit(alloc)) << "unhooked entry points pass through";

  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(cuda, nullptr);
  void* via_dlsym = dlsym(cuda, "cuLaunchKernel");
  ASSERT_TRUE(t_from_libfikit(via_dlsym)) << "dlsym did not hand out the hook";
  auto launch = reinterpret_cast<decltype(&cuLaunchKernel)>(via_dlsym);
  for (int i = 0; i < 2; i++)
    ASSERT_EQ(launch(g.spin, 4, 1, 1, 128, 1, 1, 0, g.stream, g.params, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  uint64_t host = 0;
  CUdeviceptr dev;
  ASSERT_EQ(cuMemAlloc(&dev, sizeof(host)), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyDtoH(&host, dev, sizeof(host)), CUDA_SUCCESS);
}

bool t_wait_until(bool (*cond)()) {
  uint64_t deadline = now_ns() + kDeadlineNs;
  while (!cond()) {
    if (now_ns() > deadline) return false;
    usleep(1000);
  }
  return true;
}

TEST(Child, Workload) {
  const char* mode = t_child_mode();
  if (!mode) GTEST_SKIP() << "run by the parent tests";
  t_Gpu g;
  ASSERT_NO_FATAL_FAILURE(g.init());
  auto connected = reinterpret_cast<ConnectedFn>(dlsym(RTLD_DEFAULT, "fikit_connected"));
  ASSERT_NE(connected, nullptr) << "libfikit.so is not preloaded";
  if (!strcmp(mode, "reconnect")) {
    g.launch_direct(3);  // the broker drops us after these (connected() may already say 0)
    ASSERT_TRUE(t_wait_until([] { return t_stats().reconnects >= 2; })) << "no reconnect";
    g.launch_direct(3);
    EXPECT_EQ(t_stats().launches, 6u);
    EXPECT_EQ(t_stats().passed_through, 0u);
    return;
  }
  if (!strcmp(mode, "api")) {
    g.launch_direct(2);
    auto set_priority =
        reinterpret_cast<int (*)(const char*)>(dlsym(RTLD_DEFAULT, "fikit_set_priority"));
    ASSERT_NE(set_priority, nullptr);
    EXPECT_EQ(set_priority("urgent"), -EINVAL);
    ASSERT_EQ(set_priority("low"), 0);  // after the first launch: re-registers
    ASSERT_TRUE(t_wait_until([] { return t_stats().reconnects >= 2; })) << "no re-registration";
    g.launch_direct(2);
    EXPECT_EQ(t_stats().passed_through, 0u);
    return;
  }
  if (!strcmp(mode, "fork")) {
    g.launch_direct(3);
    fflush(stdout);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      sleep(60);  // outlives the parent: its copy of the broker connection must already be closed
      _exit(0);
    }
    printf("grandchild %d\n", static_cast<int>(child));
    g.launch_direct(2);  // the parent keeps its tenancy
    EXPECT_EQ(connected(), 1);
    EXPECT_EQ(t_stats().passed_through, 0u);
    return;
  }
  ASSERT_NO_FATAL_FAILURE(t_child_workload(g));
  fikit_client_stats s = t_stats();
  EXPECT_EQ(s.launches, 10u);
  if (!strcmp(mode, "unmanaged")) {
    EXPECT_EQ(s.passed_through, 10u);
    EXPECT_EQ(connected(), 0);
  } else {
    EXPECT_EQ(s.passed_through, 0u);
    EXPECT_EQ(s.dropped, 0u);
    EXPECT_EQ(s.reconnects, 1u);
    EXPECT_EQ(connected(), 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Parent side: a fake broker, and the child runs.

struct t_Connection {
  int index = 0;
  std::atomic<bool> done{false};  // the client hung up (or was dropped)
  Segment* seg = nullptr;
  RegisterRequest req{};
  std::vector<EntryCopy> entries;
};

// Speaks the broker's side of the control protocol, one connection after the other, on a thread.
class t_FakeBroker {
 public:
  t_FakeBroker(std::string dir, uint32_t hp_marker_every, int connections, size_t close_after)
      : hp_marker_every_(hp_marker_every), connections_(connections), close_after_(close_after) {
    path_ = dir + "/broker.sock";
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
    thread_ = std::thread([this] { run(); });
  }
  ~t_FakeBroker() {
    join();
    close(listen_fd_);
    unlink(path_.c_str());
    for (auto& c : conns_) {
      if (c.seg) munmap(c.seg, sizeof(Segment));
    }
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& path() const { return path_; }
  std::deque<t_Connection>& connections() { return conns_; }

 private:
  void run() {
    for (int n = 0; n < connections_; n++) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(kDeadlineNs / 1000000)) <= 0) break;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) break;
      t_Connection* c = &conns_.emplace_back();
      c->index = n + 1;
      size_t close_after = n + 1 < connections_ ? close_after_ : SIZE_MAX;
      // One thread per connection: a tenant may stay connected while another registers.
      servers_.emplace_back([this, fd, c, close_after] {
        serve(fd, c, close_after);
        close(fd);
        c->done.store(true);
      });
    }
    for (auto& t : servers_) t.join();
  }

  bool register_tenant(int fd, t_Connection* c) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(kDeadlineNs / 1000000)) <= 0) return false;
    if (recv(fd, &c->req, sizeof(c->req), 0) != sizeof(c->req)) return false;
    int shm = memfd_create("fikit-client-test", MFD_CLOEXEC);
    if (shm < 0 || ftruncate(shm, sizeof(Segment)) != 0) return false;
    void* m = mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0);
    if (m == MAP_FAILED) return close(shm), false;
    c->seg = static_cast<Segment*>(m);
    segment_init(c->seg, static_cast<uint32_t>(c->index), 0, c->req.priority, c->req.name);
    c->seg->broker.hp_marker_every.store(hp_marker_every_);
    c->seg->broker.heartbeat_ns.store(now_ns());
    c->seg->broker.state.store(static_cast<uint32_t>(TenantState::kActive));
    RegisterReply reply{};
    reply.hdr = msg_header(MsgType::kRegisterReply, sizeof(reply));
    reply.tenant_id = static_cast<uint32_t>(c->index);
    reply.segment_size = sizeof(Segment);
    bool sent = fd__send(fd, &reply, sizeof(reply), shm) == sizeof(reply);
    close(shm);
    return sent;
  }

  // Copy out and grant what the client pushed. Return the new head.
  uint32_t consume(t_Connection* c, uint32_t head) {
    EntryCopy e;
    BrokerWords& b = c->seg->broker;
    while (ring__peek(&c->seg->ring, head, &e) == PeekResult::kReady) {
      c->entries.push_back(e);
      if (e.kind == static_cast<uint16_t>(EntryKind::kLpRequest)) {
        b.granted.store(e.position + 1, std::memory_order_release);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (b.waiters.load()) futex_wake(&b.granted, INT_MAX);
      }
      ring__consume(&c->seg->ring, ++head);
    }
    return head;
  }

  void serve(int fd, t_Connection* c, size_t close_after) {
    if (!register_tenant(fd, c)) return;
    uint32_t head = 0;
    for (;;) {
      c->seg->broker.heartbeat_ns.store(now_ns());
      head = consume(c, head);
      if (c->entries.size() >= close_after) {
        c->seg->broker.state.store(static_cast<uint32_t>(TenantState::kClosed));
        return;
      }
      pollfd p{fd, POLLIN | POLLRDHUP, 0};
      if (poll(&p, 1, 1) > 0) {
        char buf[64];
        if ((p.revents & (POLLHUP | POLLRDHUP | POLLERR)) || recv(fd, buf, sizeof(buf), 0) <= 0) {
          consume(c, head);
          return;
        }
      }
    }
  }

  std::string path_;
  int listen_fd_ = -1;
  uint32_t hp_marker_every_;
  int connections_;
  size_t close_after_;
  std::deque<t_Connection> conns_;  // stable addresses for the server threads
  std::vector<std::thread> servers_;
  std::thread thread_;
};

class Preload : public ::testing::Test {
 protected:
  void SetUp() override {
    if (t_child_mode()) GTEST_SKIP();
    const char* build = getenv("FIKIT_BUILD_DIR");
    if (!build) GTEST_SKIP() << "FIKIT_BUILD_DIR not set (run through ctest)";
    lib_ = std::string(build) + "/lib/libfikit.so";
    ASSERT_EQ(access(lib_.c_str(), R_OK), 0) << lib_;
    char tmpl[] = "/tmp/fikit-preload-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (dir_.empty()) return;
    unlink((dir_ + "/out").c_str());
    rmdir(dir_.c_str());
    shm_unlink(sim_gpu().c_str());
  }
  std::string sim_gpu() const { return "/fikit-sim-client-test-" + std::to_string(getpid()); }

  // Run this binary's Child.Workload under LD_PRELOAD. Return its exit status; output in out_.
  int run_child(const char* mode, const char* priority, const std::string& socket) {
    std::string out_path = dir_ + "/out";
    const std::string gpu = sim_gpu();  // named by this process: TearDown removes it
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      setenv("LD_PRELOAD", lib_.c_str(), 1);
      setenv("FIKIT_TEST_CHILD", mode, 1);
      setenv("FIKIT_PRIORITY", priority, 1);
      setenv("FIKIT_SOCKET", socket.c_str(), 1);
      setenv("FIKIT_TENANT", "preload-test", 1);
      setenv("FIKIT_SIM_GPU", gpu.c_str(), 1);
      setenv("FIKIT_LOG", "info", 1);
      char self[PATH_MAX];
      ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
      self[n > 0 ? n : 0] = '\0';
      execl(self, self, "--gtest_filter=Child.Workload", static_cast<char*>(nullptr));
      _exit(99);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    std::ifstream in(out_path);
    std::stringstream ss;
    ss << in.rdbuf();
    out_ = ss.str();
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    // A child that skipped its workload (say, LD_PRELOAD dropped) must not look like a pass.
    if (rc == 0 && out_.find("[  PASSED  ] 1 test.") == std::string::npos) rc = 98;
    return rc;
  }

  static int count(const t_Connection& c, EntryKind kind) {
    int n = 0;
    for (const auto& e : c.entries) n += e.kind == static_cast<uint16_t>(kind);
    return n;
  }

  std::string lib_, dir_, out_;
};

TEST_F(Preload, WithoutABrokerEverythingPassesThrough) {
  EXPECT_EQ(run_child("unmanaged", "high", dir_ + "/no-broker.sock"), 0) << out_;
  EXPECT_NE(out_.find("failed to connect to the broker"), std::string::npos) << out_;
}

TEST_F(Preload, InvalidPriorityRunsUnmanagedWithAMessage) {
  EXPECT_EQ(run_child("unmanaged", "urgent", dir_ + "/no-broker.sock"), 0) << out_;
  EXPECT_NE(out_.find("invalid FIKIT_PRIORITY 'urgent'"), std::string::npos) << out_;
}

TEST_F(Preload, HighPriorityRecordsLaunchesMarkersAndDrains) {
  t_FakeBroker broker(dir_, /*hp_marker_every=*/2, /*connections=*/1, SIZE_MAX);
  EXPECT_EQ(run_child("managed", "high", broker.path()), 0) << out_;
  broker.join();
  ASSERT_EQ(broker.connections().size(), 1u);
  t_Connection& c = broker.connections()[0];
  EXPECT_EQ(c.req.priority, kPriorityHigh);
  EXPECT_STREQ(c.req.name, "preload-test");
  ASSERT_EQ(count(c, EntryKind::kHpLaunch), 10) << out_;
  std::map<uint16_t, uint32_t> last_marker, last_issued;
  int markers = 0;
  for (const auto& e : c.entries) {
    last_issued[e.stream_slot] = e.position + 1;
    if (e.flags & kFlagMarker) {
      markers++;
      last_marker[e.stream_slot] = e.position + 1;
    }
  }
  EXPECT_EQ(markers, 5);
  EXPECT_EQ(c.entries[0].stream_slot, 0);  // legacy default stream
  EXPECT_EQ(c.entries[5].stream_slot, 1);  // per-thread default stream (cuGetProcAddress _ptsz)
  EXPECT_GE(c.entries[8].stream_slot, 2);  // a created stream
  for (auto [slot, value] : last_marker)
    EXPECT_EQ(c.seg->slots[slot].gpu_done.load(), value) << "GPU marker of slot " << slot;
  for (auto [slot, value] : last_issued)
    EXPECT_EQ(c.seg->slots[slot].host_done.load(), value) << "drain of slot " << slot;
  EXPECT_GE(c.seg->names.claimed.load(), 3u);  // spin with three launch geometries
  EXPECT_STREQ(c.seg->names.entries[0].name, "spin");
  EXPECT_EQ(c.seg->client.launches.load(), 10u);
}

TEST_F(Preload, LowPriorityWaitsForGrantsAndMarksCompletion) {
  t_FakeBroker broker(dir_, 0, 1, SIZE_MAX);
  EXPECT_EQ(run_child("managed", "low", broker.path()), 0) << out_;
  broker.join();
  ASSERT_EQ(broker.connections().size(), 1u);
  t_Connection& c = broker.connections()[0];
  EXPECT_EQ(c.req.priority, kPriorityLow);
  EXPECT_EQ(count(c, EntryKind::kLpRequest), 10) << out_;
  EXPECT_EQ(count(c, EntryKind::kLpLaunched), 10);
  std::map<uint32_t, uint16_t> requests;  // position -> slot
  std::map<uint16_t, uint32_t> last;
  for (const auto& e : c.entries) {
    if (e.kind == static_cast<uint16_t>(EntryKind::kLpRequest))
      requests[e.position] = e.stream_slot;
    if (e.kind != static_cast<uint16_t>(EntryKind::kLpLaunched)) continue;
    ASSERT_EQ(requests.count(e.ref), 1u) << "launched without a request";
    EXPECT_EQ(e.flags & kFlagMarker, kFlagMarker);
    last[requests[e.ref]] = e.ref + 1;
  }
  for (auto [slot, value] : last) {
    EXPECT_EQ(c.seg->slots[slot].gpu_done.load(), value) << "GPU marker of slot " << slot;
    EXPECT_EQ(c.seg->slots[slot].host_done.load(), value) << "drain of slot " << slot;
  }
}

TEST_F(Preload, ReconnectsWhenTheBrokerDropsIt) {
  t_FakeBroker broker(dir_, 0, /*connections=*/2, /*close_after=*/3);
  EXPECT_EQ(run_child("reconnect", "high", broker.path()), 0) << out_;
  broker.join();
  ASSERT_EQ(broker.connections().size(), 2u) << out_;
  EXPECT_EQ(count(broker.connections()[0], EntryKind::kHpLaunch), 3);
  EXPECT_EQ(count(broker.connections()[1], EntryKind::kHpLaunch), 3);
  EXPECT_NE(out_.find("lost the connection to the broker"), std::string::npos) << out_;
}

TEST_F(Preload, SetPriorityAfterStartReRegisters) {
  t_FakeBroker broker(dir_, 0, /*connections=*/2, SIZE_MAX);
  EXPECT_EQ(run_child("api", "high", broker.path()), 0) << out_;
  broker.join();
  ASSERT_EQ(broker.connections().size(), 2u) << out_;
  EXPECT_EQ(broker.connections()[0].req.priority, kPriorityHigh);
  EXPECT_EQ(count(broker.connections()[0], EntryKind::kHpLaunch), 2);
  EXPECT_EQ(broker.connections()[1].req.priority, kPriorityLow);
  EXPECT_EQ(count(broker.connections()[1], EntryKind::kLpLaunched), 2);
}

TEST_F(Preload, ForkedChildDropsTheParentsConnection) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);  // the orphaned grandchild is reaped here
  t_FakeBroker broker(dir_, 0, /*connections=*/1, SIZE_MAX);
  EXPECT_EQ(run_child("fork", "high", broker.path()), 0) << out_;
  size_t at = out_.find("grandchild ");
  ASSERT_NE(at, std::string::npos) << out_;
  pid_t grandchild = static_cast<pid_t>(atoi(out_.c_str() + at + strlen("grandchild ")));
  ASSERT_GT(grandchild, 0);
  ASSERT_EQ(broker.connections().size(), 1u);
  t_Connection& c = broker.connections()[0];
  // The parent exited; the grandchild still lives but closed its copy at fork: the broker sees
  // the tenant leave now, not when the grandchild exits.
  uint64_t deadline = now_ns() + kDeadlineNs / 3;
  while (!c.done.load() && now_ns() < deadline) usleep(1000);
  bool left = c.done.load();
  kill(grandchild, SIGKILL);
  waitpid(grandchild, nullptr, 0);
  EXPECT_TRUE(left) << "the forked child kept the parent's broker connection open";
  broker.join();
  EXPECT_EQ(count(c, EntryKind::kHpLaunch), 5);
}

}  // namespace
}  // namespace fikit
