// The fikit policy's decision trace (FIKIT_TRACE): off by default; when on, the policy's exit
// writes one CSV row per submission, completion, drain, grant and (once per request and reason)
// deny, and says how many records the capacity dropped.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "fikit_fake_sched.h"

namespace fikit::broker {
namespace {

constexpr uint64_t kUs = 1000;
constexpr uint64_t kNow = 1000000000;
constexpr uint64_t kKeyHp = 0x1111, kKeyLp = 0x2222;

std::string t_path() {
  return std::string(::testing::TempDir()) + "fikit-trace-" + std::to_string(getpid()) + ".csv";
}

std::vector<std::string> t_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// The rows of `kind` (second column).
std::vector<std::string> t_rows(const std::vector<std::string>& lines, char kind) {
  std::vector<std::string> out;
  for (const std::string& l : lines) {
    size_t comma = l.find(',');
    if (comma != std::string::npos && comma + 1 < l.size() && l[comma + 1] == kind && l[0] != '#')
      out.push_back(l);
  }
  return out;
}

// An HP request of one launch, then a gap with a LP request that goes in or waits. Tenant ids:
// hp 1, lp 2.
void t_run(t_FakeSched& s) {
  uint32_t hp = s.add("hp", kPriorityHigh);
  uint32_t lp = s.add("lp", kPriorityLow);
  s.lp_request(lp, kKeyLp, kNow);
  s.dispatch(kNow);  // no level above active yet: granted at full speed
  s.lp_complete(lp, kNow + 5 * kUs, kNow + 50 * kUs);
  uint64_t t = kNow + 100 * kUs;
  s.hp_launch(hp, kKeyHp, t);
  s.lp_request(lp, kKeyLp, t + 10 * kUs);
  s.dispatch(t + 10 * kUs);  // the HP is busy: denied
  s.dispatch(t + 20 * kUs);  // same request, same reason: not traced again
  s.hp_complete(hp, t + 300 * kUs);
}

TEST(FikitTrace, OffWithoutTheVariable) {
  std::string path = t_path();
  unlink(path.c_str());
  unsetenv("FIKIT_TRACE");
  {
    t_FakeSched s;
    t_run(s);
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST(FikitTrace, RecordsWhatThePolicySawAndDecided) {
  std::string path = t_path();
  setenv("FIKIT_TRACE", path.c_str(), 1);
  {
    t_FakeSched s;
    t_run(s);
  }
  unsetenv("FIKIT_TRACE");
  std::vector<std::string> lines = t_lines(path);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "# fikit decision trace; records dropped (capacity reached): 0");
  EXPECT_EQ(lines[1], "t_ns,kind,tenant,key,verdict,a,b");
  EXPECT_EQ(t_rows(lines, 'S').size(), 3u);  // two LP requests, one HP launch
  EXPECT_EQ(t_rows(lines, 'C').size(), 2u);  // one LP, one HP completion
  ASSERT_EQ(t_rows(lines, 'G').size(), 1u);
  EXPECT_EQ(t_rows(lines, 'G')[0].rfind(std::to_string(kNow) + ",G,2,2222,0,", 0), 0u);
  std::vector<std::string> denies = t_rows(lines, 'D');
  ASSERT_EQ(denies.size(), 1u);
  EXPECT_EQ(denies[0], std::to_string(kNow + 110 * kUs) + ",D,2,2222,101,0,0");
  // The LP drained after its grant, the HP after its launch: two gaps opened.
  EXPECT_EQ(t_rows(lines, 'I').size(), 2u);
  unlink(path.c_str());
}

TEST(FikitTrace, SaysHowManyRecordsDidNotFit) {
  std::string path = t_path();
  setenv("FIKIT_TRACE", path.c_str(), 1);
  setenv("FIKIT_TRACE_RECORDS", "2", 1);
  {
    t_FakeSched s;
    t_run(s);
  }
  unsetenv("FIKIT_TRACE");
  unsetenv("FIKIT_TRACE_RECORDS");
  std::vector<std::string> lines = t_lines(path);
  ASSERT_EQ(lines.size(), 4u);  // header, columns, two records
  EXPECT_NE(lines[0].find("dropped (capacity reached): "), std::string::npos);
  EXPECT_EQ(lines[0].find("dropped (capacity reached): 0"), std::string::npos);
  unlink(path.c_str());
}

}  // namespace
}  // namespace fikit::broker
