# Multi-GPU pieces without a broker process: the broker's GPU table (GpuDomains) and the
# registration's GPU field, the per-GPU lock, the simulated node's CUDA_VISIBLE_DEVICES, and the
# client's attribution of launches to GPUs. End to end: tests/integration/multigpu_test.cpp.
find_package(nlohmann_json 3 REQUIRED)
fikit_cc_test(broker_multigpu_test SRCS broker_multigpu_test.cpp
  ${CMAKE_SOURCE_DIR}/tests/sim/sim_devices.cpp
  LIBS fikit_broker_core fikit_cuda_headers nlohmann_json::nlohmann_json)
fikit_cc_test(client_gpu_attrib_test SRCS client_gpu_attrib_test.cpp LIBS fikit_client_core)
