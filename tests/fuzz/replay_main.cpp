// The main of a fuzz target's replay build (g++, part of `make test`): run the target once on
// each file of the corpus directories given, so the committed corpus is checked without libFuzzer.
// A crash or abort is the failure; exit 0 if every input ran, 1 if a directory is unreadable or
// empty.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  size_t inputs = 0;
  for (int i = 1; i < argc; i++) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(argv[i], ec)) {
      if (!e.is_regular_file()) continue;
      std::ifstream f(e.path(), std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
      // libFuzzer never passes a null pointer, even for an empty input.
      static const uint8_t kNone = 0;
      LLVMFuzzerTestOneInput(
          bytes.empty() ? &kNone : reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      inputs++;
    }
    if (ec)
      return fprintf(stderr, "failed to read corpus %s: %s\n", argv[i], ec.message().c_str()), 1;
  }
  printf("%zu inputs replayed\n", inputs);
  return inputs > 0 ? 0 : 1;
}
