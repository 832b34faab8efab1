// A tenant's segment is a sealed memfd (issue 16): the tenant cannot shrink or grow it (which once
// killed the broker with SIGBUS), nor unseal it; registering creates no name in /dev/shm, and names
// pre-created there (as a user could, for the old predictable "/fikit-<broker pid>-<n>") do not
// block registrations.
#include <dirent.h>
#include <fcntl.h>
#include <fikit/ring.h>
#include <fikit/util.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "harness.h"
#include "raw_tenant.h"
#include "status_query.h"

namespace fikit::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::set<std::string> shm_names() {
  std::set<std::string> names;
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') names.insert(e->d_name);
    closedir(d);
  }
  return names;
}

class HardeningSegment : public ::testing::Test {
 protected:
  t_TempDir dir;
  t_Broker broker{dir, "priority", {"--no-bpf"}};

  // The broker answers status and still runs.
  void expect_alive() {
    EXPECT_TRUE(t_status(broker.socket()).is_object()) << t_read_file(broker.proc().err_path);
    EXPECT_FALSE(t_wait(broker.proc(), 0ms)) << t_read_file(broker.proc().err_path);
  }
};

TEST_F(HardeningSegment, TenantCannotResizeOrUnsealItsSegment) {
  RawTenant t;
  ASSERT_TRUE(t.connect_and_register(broker.socket(), kPriorityLow, "resizer")) << t.error();
  int fd = t.segment_fd();
  EXPECT_EQ(fcntl(fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_EQ(ftruncate(fd, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(ftruncate(fd, sizeof(Segment) / 2), -1);
  EXPECT_EQ(ftruncate(fd, sizeof(Segment) * 2), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);  // F_SEAL_SEAL: no more seals either
  // The broker reads the whole segment each round (ring, slots): it must still be mapped whole.
  uint32_t pos = 0;
  ASSERT_TRUE(ring__push(&t.segment()->ring,
                         EntryFields{EntryKind::kLpRequest, 0, 0, 0, 7, now_ns()}, &pos));
  t.segment()->broker.doorbell.fetch_add(1);
  futex_wake(&t.segment()->broker.doorbell, 1);
  EXPECT_TRUE(t_eventually([&] { return t.segment()->broker.granted.load() == pos + 1; }, 20s));
  expect_alive();
}

TEST_F(HardeningSegment, RegistrationCreatesNoShmName) {
  std::set<std::string> before = shm_names();
  {
    RawTenant t;
    ASSERT_TRUE(t.connect_and_register(broker.socket(), kPriorityLow, "nameless")) << t.error();
    json doc = t_status(broker.socket());
    ASSERT_FALSE(t_tenant(doc, getpid()).is_null()) << doc.dump();
    // Other tests may come and go meanwhile: look only for names of this broker.
    std::string prefix = "fikit-" + std::to_string(broker.proc().pid) + "-";
    for (const std::string& n : shm_names())
      EXPECT_FALSE(!before.count(n) && n.rfind(prefix, 0) == 0) << "new /dev/shm name " << n;
  }
  expect_alive();
}

TEST_F(HardeningSegment, PreCreatedNamesDoNotBlockRegistration) {
  // What an unprivileged user could do to the old scheme: take the next names first.
  std::vector<std::string> taken;
  for (int id = 1; id <= 16; id++) {
    std::string name = "/fikit-" + std::to_string(broker.proc().pid) + "-" + std::to_string(id);
    int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd >= 0) close(fd), taken.push_back(name);
  }
  EXPECT_FALSE(taken.empty());
  for (int i = 0; i < 4; i++) {
    RawTenant t;
    EXPECT_TRUE(t.connect_and_register(broker.socket(), kPriorityLow, "squatted")) << t.error();
  }
  for (const std::string& name : taken) shm_unlink(name.c_str());
  expect_alive();
}

}  // namespace
}  // namespace fikit::test
