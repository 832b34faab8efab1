# The metrics endpoint: exposition format, HTTP responder, addresses, pods, the page.
find_package(nlohmann_json 3 REQUIRED)
fikit_cc_test(broker_metrics_test SRCS broker_metrics_test.cpp
  LIBS fikit_broker_core nlohmann_json::nlohmann_json)
