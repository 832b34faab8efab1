# Substrates and HP idleness measurement: broker/substrate.h, mps_daemon.h, calibration.h,
# idle_meter.h; fikit-run joining MPS; calibration and idleness on the simulated driver.
find_package(nlohmann_json 3 REQUIRED)
fikit_cc_test(broker_idle_meter_test SRCS broker_idle_meter_test.cpp
  LIBS fikit_broker_core nlohmann_json::nlohmann_json)
fikit_cc_test(broker_substrate_test
  SRCS broker_substrate_test.cpp ${CMAKE_SOURCE_DIR}/tests/integration/harness.cpp
  LIBS fikit_broker_core nlohmann_json::nlohmann_json TIMEOUT 300
  LABELS nosan)  # runs fikit-run tenants: libfikit.so preloaded ahead of a sanitizer runtime
target_include_directories(broker_substrate_test PRIVATE ${CMAKE_SOURCE_DIR}/tests/integration)
foreach(t fikit-broker fikit-run fikit-calibrate fikit-chain fikit fikit_simcuda)
  if(TARGET ${t})
    add_dependencies(broker_substrate_test ${t})
  endif()
endforeach()
