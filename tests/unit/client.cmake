# libclient (libfikit.so) and tools/fikit-run.
fikit_cc_test(client_kernel_ident_test SRCS client_kernel_ident_test.cpp LIBS fikit_client_core)
fikit_cc_test(client_stream_slots_test SRCS client_stream_slots_test.cpp LIBS fikit_client_core)
fikit_cc_test(client_grant_test SRCS client_grant_test.cpp LIBS fikit_client_core)
fikit_cc_test(client_procaddress_test SRCS client_procaddress_test.cpp LIBS fikit_client_core)
add_dependencies(client_procaddress_test fikit)
# Runs programs with libfikit.so preloaded: not with sanitizers (their runtime must load first).
fikit_cc_test(client_run_test SRCS client_run_test.cpp LABELS nosan)
add_dependencies(client_run_test fikit-run fikit)
if(TARGET fikit_simcuda)
  # A program linked to the simulated libcuda, run with libfikit.so preloaded.
  fikit_cc_test(client_preload_test SRCS client_preload_test.cpp LIBS fikit_simcuda fikit_cuda_headers
    ${CMAKE_DL_LIBS} rt LABELS nosan)
  add_dependencies(client_preload_test fikit)
endif()
