# The broker: scheduler rounds on in-process segments, and a real fikit-broker over its socket.
fikit_cc_test(broker_scheduler_test SRCS broker_scheduler_test.cpp LIBS fikit_broker_core)

find_package(nlohmann_json 3 REQUIRED)
fikit_cc_test(broker_control_test SRCS broker_control_test.cpp
  LIBS nlohmann_json::nlohmann_json rt TIMEOUT 180)
add_dependencies(broker_control_test fikit-broker)
fikit_cc_test(broker_uring_loop_test SRCS broker_uring_loop_test.cpp LIBS fikit_broker_core)
# Hooks the broker gives policies (hints, statistics, marker sampling, log) and their options.
fikit_cc_test(broker_policy_hooks_test SRCS broker_policy_hooks_test.cpp
  LIBS fikit_broker_core nlohmann_json::nlohmann_json)
add_dependencies(broker_policy_hooks_test fikit-broker)
# The control thread's limits: exception guard, rate counter, accept back-off, quotas.
fikit_cc_test(broker_control_limits_test SRCS broker_control_limits_test.cpp LIBS fikit_broker_core)
