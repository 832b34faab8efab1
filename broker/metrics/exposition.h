// The Prometheus text exposition format, version 0.0.4: what a GET /metrics answers. A writer of
// metric families (# HELP and # TYPE once per family, then its samples) that escapes label values
// and help text as the format requires and keeps label values valid UTF-8 (a tenant's name is
// untrusted: invalid bytes become U+FFFD).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fikit::broker::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// The media type of the format, for the Content-Type header.
inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

class Exposition {
 public:
  // Start family `name` of `type` ("counter", "gauge", "histogram"): its HELP and TYPE lines.
  // Each family once per page, its samples right after it.
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample of the current family: name{labels} value.
  void sample(std::string_view name, const Labels& labels, double value);
  // A histogram's samples: name_bucket{le=...} (cumulative counts for `upper_bounds`, then +Inf =
  // count), name_sum and name_count.
  void histogram(std::string_view name, const Labels& labels,
                 const std::vector<double>& upper_bounds, const std::vector<uint64_t>& cumulative,
                 double sum, uint64_t count);
  const std::string& text() const { return out_; }

 private:
  void labels(const Labels& labels, const char* extra_key = nullptr,
              const std::string& extra_value = "");
  std::string out_;
};

// `s` as a label value: valid UTF-8, with backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view s);
// A sample value: integers exactly, others with the fewest digits (15 to 17) that read back the
// same; NaN, +Inf, -Inf.
std::string format_value(double v);

}  // namespace fikit::broker::metrics
