// fikit-run's side of the MPS substrate: ask the broker (a status request on its socket) whether
// it runs MPS, and if so put CUDA_MPS_PIPE_DIRECTORY and CUDA_MPS_LOG_DIRECTORY in the
// environment, so that the program joins the broker's MPS daemon at its first CUDA call.
#pragma once

#include <string>

namespace fikit::run {

struct BrokerSubstrate {
  bool reached = false;  // the broker answered
  std::string kind;      // "mps", "timeslice", or "" (a broker without substrates)
  std::string pipe_dir;  // MPS only
  std::string log_dir;
};

// Ask the broker on `socket`, waiting at most timeout_ms for its answer.
BrokerSubstrate query_substrate(const std::string& socket, int timeout_ms);

// Set the MPS variables for the broker's daemon unless the environment already names a pipe
// directory (then warn if it is another). A tenant below the highest priority also gets
// CUDA_MPS_CLIENT_PRIORITY=1 (unless set): where its work overlaps the highest level's (a
// prediction missed), the GPU then dispatches the higher level's thread blocks first. Return a
// warning for stderr, or "".
std::string join_mps(const BrokerSubstrate& b, int priority);

}  // namespace fikit::run
