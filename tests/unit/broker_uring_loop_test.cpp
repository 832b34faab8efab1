// UringLoop: polls until removed (also from their own callback), timers, one message per recv with
// truncation and end of file, multishot accept.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/uring_loop.h"

namespace fikit::broker {
namespace {

TEST(UringLoop, PollRunsUntilRemovedFromItsOwnCallback) {
  UringLoop loop;
  ASSERT_EQ(loop.init(), 0);
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  int polls = 0, ticks = 0, poll_id = 0;
  poll_id = loop.add_poll(efd, [&](uint32_t revents) {
    EXPECT_TRUE(revents & POLLIN);
    uint64_t v;
    EXPECT_EQ(read(efd, &v, sizeof(v)), 8);
    if (++polls == 3) loop.remove(poll_id);
  });
  ASSERT_GT(poll_id, 0);
  // Every tick makes the eventfd readable; the poll must see exactly three of them.
  ASSERT_GT(loop.add_timer(1'000'000,
                           [&] {
                             uint64_t one = 1;
                             EXPECT_EQ(write(efd, &one, sizeof(one)), 8);
                             if (++ticks == 10) loop.stop();
                           }),
            0);
  ASSERT_EQ(loop.run(), 0);
  EXPECT_EQ(polls, 3);
  EXPECT_EQ(ticks, 10);
  close(efd);
}

TEST(UringLoop, RecvDeliversMessagesTruncationAndEof) {
  UringLoop loop;
  ASSERT_EQ(loop.init(), 0);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(send(sv[1], "ab", 2, 0), 2);
  ASSERT_EQ(send(sv[1], "cde", 3, 0), 3);
  std::string big(100, 'x');
  ASSERT_EQ(send(sv[1], big.data(), big.size(), 0), 100);
  close(sv[1]);
  std::vector<std::string> got;
  std::vector<int> lens;
  ASSERT_GT(loop.add_recv(sv[0], 16,
                          [&](const char* data, int len) {
                            lens.push_back(len);
                            if (len > 0 && len <= 16) got.emplace_back(data, len);
                            if (len <= 0) loop.stop();
                          }),
            0);
  ASSERT_EQ(loop.run(), 0);
  EXPECT_EQ(got, (std::vector<std::string>{"ab", "cde"}));
  EXPECT_EQ(lens, (std::vector<int>{2, 3, 100, 0}));  // 100: truncated to 16, real length told
  close(sv[0]);
}

TEST(UringLoop, AcceptDeliversEachConnection) {
  UringLoop loop;
  ASSERT_EQ(loop.init(), 0);
  int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::string name = "fikit-uring-test-" + std::to_string(getpid());
  memcpy(a.sun_path + 1, name.data(), name.size());  // abstract: nothing to clean up
  socklen_t alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), alen), 0);
  ASSERT_EQ(listen(lfd, 8), 0);
  int c1 = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  int c2 = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(c1, reinterpret_cast<sockaddr*>(&a), alen), 0);
  ASSERT_EQ(connect(c2, reinterpret_cast<sockaddr*>(&a), alen), 0);
  std::vector<int> accepted;
  ASSERT_GT(loop.add_accept(lfd,
                            [&](int fd) {
                              EXPECT_GE(fd, 0);
                              accepted.push_back(fd);
                              if (accepted.size() == 2) loop.stop();
                            }),
            0);
  ASSERT_EQ(loop.run(), 0);
  ASSERT_EQ(accepted.size(), 2u);
  for (int fd : accepted) close(fd);
  close(c1);
  close(c2);
  close(lfd);
}

TEST(UringLoop, RemoveOfUnknownIdIsHarmless) {
  UringLoop loop;
  ASSERT_EQ(loop.init(), 0);
  loop.remove(12345);
  int ticks = 0;
  int id = loop.add_timer(1'000'000, [&] {
    if (++ticks == 2) loop.stop();
  });
  ASSERT_GT(id, 0);
  ASSERT_EQ(loop.run(), 0);
  loop.remove(id);
  loop.remove(id);
  EXPECT_EQ(ticks, 2);
}

}  // namespace
}  // namespace fikit::broker
