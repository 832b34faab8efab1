// `fikit-run` of an ordinary program whose file name is Latin-1 ("caf\xe9", issue 16): the client
// library derives the tenant name from it and must send a valid one, the broker lists the tenant,
// and after it leaves the broker still answers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "harness.h"
#include "status_query.h"

namespace fikit::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The tenant entry named `name` in the broker's status, or a null json.
json tenant_named(const std::string& socket, const std::string& name) {
  json doc = t_status(socket);
  if (doc.is_object())
    for (const json& t : doc["tenants"])
      if (t["name"] == name) return t;
  return nullptr;
}

TEST(HardeningRun, Latin1ProgramNameRegistersAndLeaves) {
  t_TempDir dir;
  t_SimGpu gpu(dir);
  t_Broker broker(dir, "priority", {"--no-bpf"});
  ASSERT_TRUE(broker.running());
  std::string program = dir.file("caf\xe9");
  ASSERT_EQ(symlink(t_bin("fikit-chain").c_str(), program.c_str()), 0);
  t_Proc p = t_spawn({t_bin("fikit-run"), "--priority", "low", "--socket", broker.socket(), "--",
                      program, "lp", "--seconds", "3", "--kernel-us", "200"},
                     gpu.env(), dir.file("cafe"));
  EXPECT_TRUE(t_eventually([&] { return !tenant_named(broker.socket(), "caf?").is_null(); }, 20s))
      << t_read_file(p.err_path) << t_read_file(broker.proc().err_path);
  ASSERT_TRUE(t_wait(p, 60s)) << t_read_file(p.err_path);
  EXPECT_EQ(t_exit_code(p), 0) << t_read_file(p.err_path);
  EXPECT_TRUE(t_eventually([&] { return tenant_named(broker.socket(), "caf?").is_null(); }, 10s));
  EXPECT_TRUE(t_status(broker.socket()).is_object()) << t_read_file(broker.proc().err_path);
  EXPECT_FALSE(t_wait(broker.proc(), 0ms)) << t_read_file(broker.proc().err_path);
}

}  // namespace
}  // namespace fikit::test
