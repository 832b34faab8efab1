#include "mps_join.h"

#include <fikit/protocol.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

namespace fikit::run {
namespace {

// Send a status request and return the reply's text, or "" if none came.
std::string ask_status(const std::string& socket_path, int timeout_ms) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) return "";
  memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  std::string text;
  SimpleRequest req{msg_header(MsgType::kStatus, sizeof(SimpleRequest)), 0, 0};
  pollfd p{fd, POLLIN, 0};
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      send(fd, &req, sizeof(req), MSG_NOSIGNAL) == sizeof(req) && poll(&p, 1, timeout_ms) == 1) {
    auto reply = std::make_unique<TextReply>();
    ssize_t n = recv(fd, reply.get(), sizeof(TextReply), 0);
    if (n > static_cast<ssize_t>(offsetof(TextReply, text)) && reply->hdr.magic == kMsgMagic &&
        reply->hdr.type == static_cast<uint32_t>(MsgType::kStatusReply) && reply->status == 0 &&
        reply->text_len <= static_cast<size_t>(n) - offsetof(TextReply, text))
      text.assign(reply->text, reply->text_len);
  }
  close(fd);
  return text;
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
