# Unit tests of the fikit policy (broker/policy/fikit). The broker adds the policy library with
# add_subdirectory(policy/fikit); until it does (or when only tests are configured), add it here.
if(NOT TARGET fikit_policy_fikit)
  add_subdirectory(${CMAKE_CURRENT_LIST_DIR}/../../broker/policy/fikit
                   ${CMAKE_BINARY_DIR}/broker/policy/fikit)
endif()

foreach(t histogram kernel_stats gap_predictor fill policy profile oracle harvest wiring trace)
  fikit_cc_test(fikit_${t}_test SRCS fikit_${t}_test.cpp LIBS fikit_policy_fikit)
endforeach()
