fikit_cc_test(policy_test SRCS policy_test.cpp LIBS fikit_broker_core)
