# `fikit-broker status`: the document's schema, the table's width, rates, the legend, no broker.
find_package(nlohmann_json 3 REQUIRED)
fikit_cc_test(broker_status_test SRCS broker_status_test.cpp
  LIBS fikit_broker_core nlohmann_json::nlohmann_json)
add_dependencies(broker_status_test fikit-broker)
