// Functions of libfikit_bpf_testlib.so, probed by the launch-audit test.
#pragma once

extern "C" {
int fikit_test_launch(int x);
int fikit_test_launch_ex(int x);
}
