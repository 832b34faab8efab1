// The broker's log (broker/base/log.h): repeated lines are suppressed past a burst and counted,
// distinct lines are not, and journald's priority prefixes when asked.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "base/log.h"

namespace fikit::broker {
namespace {

size_t t_count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
  return n;
}

TEST(OperatorLog, RepeatedLinesAreSuppressedAndCounted) {
  testing::internal::CaptureStderr();
  // As the accept loop did with its file descriptors exhausted: one line, 10,000 times.
  for (int i = 0; i < 10000; i++)
    FIKIT_LOG_ERROR("failed to accept a connection (%d): Too many open files", i);
  log_flush_suppressed();
  std::string out = testing::internal::GetCapturedStderr();
  size_t written = t_count(out, "failed to accept a connection");
  EXPECT_GE(written, 20u) << "a burst goes through";
  EXPECT_LT(written, 100u) << "not every repeat is written";
  // The count says how many were left out; the written ones and it add up.
  size_t at = out.find("suppressed ");
  ASSERT_NE(at, std::string::npos) << out.substr(0, 2000);
  unsigned long long suppressed = std::stoull(out.substr(at + 11));
  EXPECT_EQ(suppressed + written - 1, 10000u) << "the report quotes one line";
}

TEST(OperatorLog, DistinctLinesAreAllWritten) {
  testing::internal::CaptureStderr();
  const char* words[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
  for (int i = 0; i < 50; i++) FIKIT_LOG_INFO("tenant '%s-%c' left", words[i % 5], 'a' + i / 5);
  log_flush_suppressed();
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(t_count(out, " left\n"), 50u) << out;
  EXPECT_EQ(out.find("suppressed"), std::string::npos);
}

TEST(OperatorLog, JournalPrefixesCarryThePriority) {
  log_set_journal(true);
  testing::internal::CaptureStderr();
  FIKIT_LOG_ERROR("an error for the journal");
  FIKIT_LOG_WARN("a warning for the journal");
  FIKIT_LOG_INFO("a notice for the journal");
  std::string out = testing::internal::GetCapturedStderr();
  log_set_journal(false);
  std::istringstream lines(out);
  std::string e, w, i;
  std::getline(lines, e);
  std::getline(lines, w);
  std::getline(lines, i);
  EXPECT_EQ(e.rfind("<3>", 0), 0u) << e;
  EXPECT_EQ(w.rfind("<4>", 0), 0u) << w;
  EXPECT_EQ(i.rfind("<6>", 0), 0u) << i;
}

}  // namespace
}  // namespace fikit::broker
