// Tenant names a real broker must refuse or repair (issue 16): a name with a non-UTF-8 byte, one
// without room for its NUL, one with a control character, and a process whose command name (the
// broker's default for an unnamed tenant) is Latin-1. After each, `status` answers and the
// tenant's leaving does not take the broker down.
#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "harness.h"
#include "raw_tenant.h"
#include "status_query.h"

namespace fikit::test {
namespace {

using nlohmann::json;

RegisterRequest request_named(const char* bytes, size_t n) {
  RegisterRequest req{};
  req.hdr = msg_header(MsgType::kRegister, sizeof(req));
  req.priority = kPriorityLow;
  memcpy(req.name, bytes, std::min(n, sizeof(req.name)));
  return req;
}

class HardeningNames : public ::testing::Test {
 protected:
  t_TempDir dir;
  t_Broker broker{dir, "priority", {"--no-bpf"}};

  // Register `req`; expect a refusal whose text contains `says`. Then the broker still answers.
  void expect_refused(const RegisterRequest& req, const std::string& says) {
    RawTenant t;
    EXPECT_FALSE(t.connect_and_register(broker.socket(), req));
    EXPECT_EQ(t.reply().status, -EINVAL) << t.error();
    EXPECT_NE(t.error().find(says), std::string::npos) << t.error();
    expect_alive();
  }
  void expect_alive() {
    json doc = t_status(broker.socket());
    ASSERT_TRUE(doc.is_object()) << "no status: " << t_read_file(broker.proc().err_path);
    EXPECT_TRUE(t_tenant(doc, getpid()).is_null()) << doc.dump();
    EXPECT_FALSE(t_wait(broker.proc(), std::chrono::milliseconds(0)))
        << "broker exited: " << t_read_file(broker.proc().err_path);
  }
};

TEST_F(HardeningNames, NonUtf8NameIsRefused) {
  expect_refused(request_named("bad\xff", 4), "not valid UTF-8 (byte 0xff at offset 3)");
  expect_refused(request_named("\xc3", 1), "not valid UTF-8");          // cut short
  expect_refused(request_named("\xc0\xaf", 2), "not valid UTF-8");      // overlong '/'
  expect_refused(request_named("\xed\xa0\x80", 3), "not valid UTF-8");  // surrogate
}

TEST_F(HardeningNames, OverlongNameIsRefused) {
  std::string name(kNameLen, 'n');  // no room for the NUL
  expect_refused(request_named(name.data(), name.size()), "at most 31 bytes");
}

TEST_F(HardeningNames, ControlCharacterIsRefused) {
  expect_refused(request_named("a\nb", 3), "control character");
  expect_refused(request_named("a\x1b[2J", 5), "control character");  // terminal escape
  expect_refused(request_named("a\xc2\x9b"
                               "b",
                               4),
                 "control character");  // C1 CSI
}

TEST_F(HardeningNames, ValidUtf8NameIsKept) {
  RawTenant t;
  ASSERT_TRUE(t.connect_and_register(broker.socket(), kPriorityLow, "caf\xc3\xa9")) << t.error();
  json doc = t_status(broker.socket());
  EXPECT_EQ(t_tenant(doc, getpid())["name"], "caf\xc3\xa9") << doc.dump();
}

// An unnamed tenant is named after its command name, which may be Latin-1: the broker repairs it.
TEST_F(HardeningNames, Latin1CommandNameIsRepaired) {
  char saved[16] = {};
  prctl(PR_GET_NAME, saved);
  prctl(PR_SET_NAME, "caf\xe9");
  {
    RawTenant t;
    bool ok = t.connect_and_register(broker.socket(), kPriorityLow, "");
    prctl(PR_SET_NAME, saved);
    ASSERT_TRUE(ok) << t.error();
    json doc = t_status(broker.socket());
    EXPECT_EQ(t_tenant(doc, getpid())["name"], "caf?") << doc.dump();
  }  // the tenant leaves
  EXPECT_TRUE(t_eventually([&] { return t_tenant(t_status(broker.socket()), getpid()).is_null(); },
                           std::chrono::seconds(10)));
  expect_alive();
}

}  // namespace
}  // namespace fikit::test
