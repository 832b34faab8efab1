# The simulated CUDA driver (tests/sim): its time model directly, its driver API through the
# library.
fikit_cc_test(sim_test SRCS sim_test.cpp sim_sharing_test.cpp sim_model_test.cpp
  sim_mps_model_test.cpp
  LIBS fikit_simcuda fikit_sim_model fikit_cuda_headers)
