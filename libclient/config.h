// Process configuration: priority, tenant name, broker socket and broker timeout. Read from the
// environment (FIKIT_PRIORITY, FIKIT_TENANT, FIKIT_SOCKET, FIKIT_BROKER_TIMEOUT_MS,
// FIKIT_HP_BUDGET) at the first CUDA hook call; the C API (client.h) may set priority and name
// before that and wins over the environment. Guarded by a mutex: only the start-up, the monitor
// thread and the C API touch it.
#pragma once

#include <fikit/abi.h>
#include <sys/un.h>

#include <cstdint>

namespace fikit::client {

inline constexpr uint64_t kDefaultBrokerTimeoutMs = 1000;

struct Config {
  bool priority_valid;  // false: FIKIT_PRIORITY was invalid, run unmanaged
  uint32_t priority;    // 0 (highest) .. kPriorityLevels-1
  char name[kNameLen];
  char socket_path[sizeof(sockaddr_un::sun_path)];
  // FIKIT_HP_BUDGET as given ("" if unset), sent with the registration for the broker to check;
  // without a NUL when longer than it holds (the broker refuses it and says so).
  char hp_budget[32];
};

// Read the environment once; later calls do nothing. Prints a message once if FIKIT_PRIORITY is
// invalid.
void config_load_env() noexcept;

// A copy of the current configuration.
Config config_get() noexcept;

// Set the priority ("high", "normal", "low", "0".."7"). Return 0 or -EINVAL.
int config_set_priority(const char* priority) noexcept;

// Set the tenant name (1..kNameLen-1 bytes). Return 0 or -EINVAL.
int config_set_name(const char* name) noexcept;

// How old the broker's heartbeat may be before LP waiters fail open (FIKIT_BROKER_TIMEOUT_MS).
uint64_t config_broker_timeout_ns() noexcept;

}  // namespace fikit::client
