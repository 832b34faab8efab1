# libclient (libfikit.so) and tools/fikit-run.
fikit_cc_test(client_kernel_ident_test SRCS client_kernel_ident_test.cpp LIBS fikit_client_core)
fikit_cc_test(client_stream_slots_test SRCS client_stream_slots_test.cpp LIBS fikit_client_core)
fikit_cc_test(client_grant_test SRCS client_grant_test.cpp LIBS fikit_client_core)
fikit_cc_test(client_procaddress_test SRCS client_procaddress_test.cpp LIBS fikit_client_core)
add_dependencies(client_procaddress_test fikit)
fikit_cc_test(client_run_test SRCS client_run_test.cpp)
add_dependencies(client_run_test fikit-run fikit)
