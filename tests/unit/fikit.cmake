# Unit tests of the fikit policy (broker/policy/fikit, the library fikit_policy_fikit).

foreach(t histogram kernel_stats gap_predictor fill policy profile oracle harvest wiring trace budget
    share burst)
  fikit_cc_test(fikit_${t}_test SRCS fikit_${t}_test.cpp LIBS fikit_policy_fikit)
endforeach()
