// A tenant that speaks the control protocol by hand (no client library): for tests and benchmarks
// that need to play the client side of a segment exactly.
#pragma once

#include <fikit/protocol.h>

#include <cstdint>
#include <string>

namespace fikit::test {

class RawTenant {
 public:
  RawTenant() = default;
  ~RawTenant();
  RawTenant(const RawTenant&) = delete;
  RawTenant& operator=(const RawTenant&) = delete;

  // Connect to the broker at `socket` and register. Return false (see error()) if anything fails.
  bool connect_and_register(const std::string& socket, uint32_t priority, const char* name,
                            uint16_t abi_major = kAbiMajor);
  // The same with a request sent exactly as given (for requests a client library never sends).
  bool connect_and_register(const std::string& socket, const RegisterRequest& req);
  // Wait until the broker publishes `state`, at most timeout_ns.
  bool wait_state(TenantState state, uint64_t timeout_ns) const;

  Segment* segment() const { return seg_; }
  // The segment's descriptor as the broker sent it (for tests that attack it).
  int segment_fd() const { return seg_fd_; }
  const RegisterReply& reply() const { return reply_; }
  const std::string& error() const { return error_; }

 private:
  int fd_ = -1;
  int seg_fd_ = -1;
  Segment* seg_ = nullptr;
  RegisterReply reply_{};
  std::string error_;
};

}  // namespace fikit::test
