# The operator's daemon: files written where no other user can redirect them (broker/base/safe_fs.h).
fikit_cc_test(operator_safe_fs_test SRCS operator_safe_fs_test.cpp
  LIBS fikit_safe_fs fikit_policy_fikit)
# fikit-broker's command line: the configuration file, --version, --log-level, help per command.
fikit_cc_test(operator_options_test SRCS operator_options_test.cpp LIBS fikit_broker_core)
# The broker's log: repeats suppressed and counted, journald prefixes.
fikit_cc_test(operator_log_test SRCS operator_log_test.cpp LIBS fikit_broker_core)
# Profiles keyed by (uid, name), names validated, profile rm.
fikit_cc_test(operator_profile_test SRCS operator_profile_test.cpp LIBS fikit_policy_fikit)
