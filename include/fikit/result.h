// Status and Result<T>: what control-plane calls of the broker, its BPF loader and the tools
// return. Codes follow abseil's StatusCode; messages say what failed and what to do.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace fikit::broker {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kFailedPrecondition,
  kUnavailable,
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  // "failed to <what>: <strerror(err)>", with a code derived from err (positive or negative).
  static Status from_errno(int err, const std::string& what);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit on purpose, like absl
  Result(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

inline Status Status::from_errno(int err, const std::string& what) {
  if (err < 0) err = -err;
  StatusCode code = StatusCode::kInternal;
  switch (err) {
    case EINVAL:
    case E2BIG:
    case ENAMETOOLONG:
      code = StatusCode::kInvalidArgument;
      break;
    case ENOENT:
      code = StatusCode::kNotFound;
      break;
    case EEXIST:
      code = StatusCode::kAlreadyExists;
      break;
    case EPERM:
    case EACCES:
      code = StatusCode::kPermissionDenied;
      break;
    case ECONNREFUSED:
    case EAGAIN:
    case ENOSYS:
    case EOPNOTSUPP:
    case ENODEV:
      code = StatusCode::kUnavailable;
      break;
    default:
      break;
  }
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof(buf));  // GNU: returns the text
  return Status(code, "failed to " + what + ": " + text);
}

}  // namespace fikit::broker
