# The broker: scheduler rounds on in-process segments, and a real fikit-broker over its socket.
fikit_cc_test(broker_scheduler_test SRCS broker_scheduler_test.cpp LIBS fikit_broker_core)
