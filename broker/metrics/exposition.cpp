#include "metrics/exposition.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace fikit::broker::metrics {
namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 if there is none.
size_t utf8_length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  if (n == 2 && c < 0xc2) return 0;  // overlong
  return n;
}

std::string escape_help(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string escape_label_value(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_length(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD
      i++;
      continue;
    }
    if (s[i] == '\\')
      out += "\\\\";
    else if (s[i] == '"')
      out += "\\\"";
    else if (s[i] == '\n')
      out += "\\n";
    else
      out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    snprintf(buf, sizeof(buf), "%.0f", v);
  else
    // The fewest digits that read back as v (0.000025, not 2.5000000000000001e-05).
    for (int digits = 15; digits <= 17; digits++) {
      snprintf(buf, sizeof(buf), "%.*g", digits, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
  return buf;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Exposition::labels(const Labels& labels, const char* extra_key,
                        const std::string& extra_value) {
  if (labels.empty() && !extra_key) return;
  out_ += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += k + "=\"" + escape_label_value(v) + '"';
  }
  if (extra_key) {
    if (!first) out_ += ',';
    out_ += std::string(extra_key) + "=\"" + extra_value + '"';
  }
  out_ += '}';
}

void Exposition::sample(std::string_view name, const Labels& l, double value) {
  out_ += name;
  labels(l);
  out_ += ' ' + format_value(value) + '\n';
}

void Exposition::histogram(std::string_view name, const Labels& l,
                           const std::vector<double>& upper_bounds,
                           const std::vector<uint64_t>& cumulative, double sum, uint64_t count) {
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i < upper_bounds.size() && i < cumulative.size(); i++) {
    out_ += bucket;
    labels(l, "le", format_value(upper_bounds[i]));
    out_ += ' ' + format_value(static_cast<double>(cumulative[i])) + '\n';
  }
  out_ += bucket;
  labels(l, "le", "+Inf");
  out_ += ' ' + format_value(static_cast<double>(count)) + '\n';
  sample(std::string(name) + "_sum", l, sum);
  sample(std::string(name) + "_count", l, static_cast<double>(count));
}

}  // namespace fikit::broker::metrics
