// The broker's Status and Result<T> (broker/result.h), used by the BPF observer's control-plane
// calls, and errno_status() to build a Status from an errno value. (Status::from_errno lives in
// fikit_broker_core, which this library does not link: the broker links this library.)
#pragma once

#include <string>

#include "result.h"

namespace fikit::bpf {

using broker::Result;
using broker::Status;
using broker::StatusCode;

// "failed to <what>: <strerror(err)>", with the code errno `err` (positive or negative) implies.
Status errno_status(int err, const std::string& what);

}  // namespace fikit::bpf
