// The broker's status document, asked for over its socket in-process (cheaper than spawning
// `fikit-broker status` in a polling loop), and its "gpu" processes (broker/gpu_status.h).
#pragma once

#include <fikit/protocol.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace fikit::test {

// The parsed status document, or a null json if the broker did not answer.
inline nlohmann::json t_status(const std::string& socket_path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", socket_path.c_str());
  SimpleRequest req{};
  req.hdr = msg_header(MsgType::kStatus, sizeof(req));
  auto reply = std::make_unique<TextReply>();
  ssize_t n = -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      send(fd, &req, sizeof(req), MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(req)))
    n = recv(fd, reply.get(), sizeof(TextReply), 0);
  close(fd);
  if (n <= static_cast<ssize_t>(offsetof(TextReply, text)) || reply->status != 0) return nullptr;
  return nlohmann::json::parse(std::string(reply->text, reply->text_len), nullptr, false);
}

// The "gpu" process entry of `pid` in a status document, or a null json.
inline nlohmann::json t_gpu_process(const nlohmann::json& doc, pid_t pid) {
  if (!doc.is_object() || !doc.contains("gpu")) return nullptr;
  for (const nlohmann::json& p : doc["gpu"]["processes"])
    if (p["pid"] == pid) return p;
  return nullptr;
}

// The tenant entry of `pid`, or a null json.
inline nlohmann::json t_tenant(const nlohmann::json& doc, pid_t pid) {
  if (!doc.is_object() || !doc.contains("tenants")) return nullptr;
  for (const nlohmann::json& t : doc["tenants"])
    if (t["pid"] == pid) return t;
  return nullptr;
}

}  // namespace fikit::test
