// The broker's Status and Result<T> (fikit/result.h), used by the BPF observer's control-plane
// calls (header-only: this library does not link fikit_broker_core; the broker links it).
#pragma once

#include <fikit/result.h>

#include <string>

namespace fikit::bpf {

using broker::Result;
using broker::Status;
using broker::StatusCode;

// "failed to <what>: <strerror(err)>", with the code errno `err` (positive or negative) implies.
inline Status errno_status(int err, const std::string& what) {
  return Status::from_errno(err, what);
}

}  // namespace fikit::bpf
