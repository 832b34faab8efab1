# The broker's side of the eBPF GPU-driver observer that needs no BPF: its options, the status
# document's "gpu" member and its table. (The observer itself: tests/bpf/, label bpf.)
find_package(nlohmann_json 3 REQUIRED)
fikit_cc_test(broker_gpu_test SRCS broker_gpu_test.cpp
  LIBS fikit_broker_core nlohmann_json::nlohmann_json)
