#include "raw_tenant.h"

#include <fcntl.h>
#include <fikit/fd_passing.h>
#include <fikit/util.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace fikit::test {

RawTenant::~RawTenant() {
  if (seg_) munmap(seg_, sizeof(Segment));
  if (seg_fd_ >= 0) close(seg_fd_);
  if (fd_ >= 0) close(fd_);
}

bool RawTenant::connect_and_register(const std::string& socket_path, uint32_t priority,
                                     const char* name, uint16_t abi_major) {
  RegisterRequest req{};
  req.hdr = msg_header(MsgType::kRegister, sizeof(req));
  req.hdr.abi_major = abi_major;
  req.priority = priority;
  snprintf(req.name, sizeof(req.name), "%s", name);
  return connect_and_register(socket_path, req);
}

bool RawTenant::connect_and_register(const std::string& socket_path, const RegisterRequest& req) {
  fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", socket_path.c_str());
  if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    error_ = "failed to connect to " + socket_path + ": " + strerror(errno);
    return false;
  }
  if (send(fd_, &req, sizeof(req), 0) != static_cast<ssize_t>(sizeof(req))) {
    error_ = std::string("failed to send registration: ") + strerror(errno);
    return false;
  }
  ssize_t n = fd__recv(fd_, &reply_, sizeof(reply_), &seg_fd_);
  if (n < static_cast<ssize_t>(sizeof(MsgHeader) + sizeof(int32_t))) {
    error_ = "no registration reply";
    return false;
  }
  if (reply_.status != 0) {
    error_ = std::string("registration refused: ") + reply_.error;
    return false;
  }
  if (seg_fd_ < 0) {
    error_ = "the registration reply carries no segment";
    return false;
  }
  void* p = mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, seg_fd_, 0);
  if (p == MAP_FAILED) {
    error_ = std::string("failed to map segment: ") + strerror(errno);
    return false;
  }
  seg_ = static_cast<Segment*>(p);
  if (const char* why = segment_check(seg_, sizeof(Segment))) {
    error_ = why;
    return false;
  }
  return true;
}

bool RawTenant::wait_state(TenantState state, uint64_t timeout_ns) const {
  uint64_t deadline = now_ns() + timeout_ns;
  while (now_ns() < deadline) {
    if (seg_->broker.state.load() == static_cast<uint32_t>(state)) return true;
    usleep(200);
  }
  return false;
}

}  // namespace fikit::test
