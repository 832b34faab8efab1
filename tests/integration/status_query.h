// The broker's status document, asked for over its socket in-process (cheaper than spawning
// `fikit-broker status` in a polling loop), and its "gpu" processes (broker/gpu/gpu_status.h).
#pragma once

#include <fikit/protocol.h>
#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace fikit::test {

// The parsed status document, or a null json if the broker did not answer.
inline nlohmann::json t_status(const std::string& socket_path) {
  auto reply = std::make_unique<TextReply>();
  if (ctl_request(socket_path.c_str(), MsgType::kStatus, reply.get(), 10000) != 0 ||
      reply->status != 0)
    return nullptr;
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
