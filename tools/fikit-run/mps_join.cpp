#include "mps_join.h"

#include <fikit/protocol.h>
#include <stdlib.h>

#include <memory>
#include <nlohmann/json.hpp>

namespace fikit::run {
namespace {

// Send a status request and return the reply's text, or "" if none came.
std::string ask_status(const std::string& socket_path, int timeout_ms) {
  auto reply = std::make_unique<TextReply>();
  if (ctl_request(socket_path.c_str(), MsgType::kStatus, reply.get(), timeout_ms) != 0 ||
      reply->status != 0)
    return "";
  return std::string(reply->text, reply->text_len);
}

}  // namespace

BrokerSubstrate query_substrate(const std::string& socket, int timeout_ms) {
  BrokerSubstrate b;
  std::string text = ask_status(socket, timeout_ms);
  if (text.empty()) return b;
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return b;
  b.reached = true;
  if (!doc.contains("substrate") || !doc["substrate"].is_object()) return b;
  const nlohmann::json& s = doc["substrate"];
  b.kind = s.value("kind", std::string());
  b.pipe_dir = s.value("mps_pipe_dir", std::string());
  b.log_dir = s.value("mps_log_dir", std::string());
  return b;
}

std::string join_mps(const BrokerSubstrate& b, int priority) {
  if (b.kind != "mps" || b.pipe_dir.empty()) return "";
  const char* pipe = getenv("CUDA_MPS_PIPE_DIRECTORY");
  if (pipe && *pipe) {
    if (b.pipe_dir == pipe) return "";
    return std::string("CUDA_MPS_PIPE_DIRECTORY=") + pipe +
           " is kept, but the broker runs MPS on " + b.pipe_dir +
           ": this tenant does not join the broker's MPS daemon";
  }
  setenv("CUDA_MPS_PIPE_DIRECTORY", b.pipe_dir.c_str(), 1);
  if (!b.log_dir.empty()) setenv("CUDA_MPS_LOG_DIRECTORY", b.log_dir.c_str(), 0);
  // MPS knows two client priorities: 0 (normal) and 1 (below normal).
  setenv("CUDA_MPS_CLIENT_PRIORITY", priority > 0 ? "1" : "0", 0);
  return "";
}

}  // namespace fikit::run
