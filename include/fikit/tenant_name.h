// Tenant names: what a valid one is, and how to make one from any bytes. A name travels in a
// RegisterRequest's fixed kNameLen buffer and ends up in the broker's log, its status JSON and
// the profile files, so the broker accepts only NUL-terminated, well-formed UTF-8 without control
// characters (C0, DEL, C1); a JSON encoder or a terminal can then take it as it is. The client
// derives its default name from the program's file name, which may be any bytes (Latin-1
// "caf\xe9"): tenant_name__sanitize turns such bytes into a valid name instead of sending them.
// Allocation-free and noexcept: the client library uses it.
#pragma once

#include <fikit/abi.h>

#include <cstddef>
#include <cstdint>

namespace fikit {

// Length of the well-formed UTF-8 sequence starting at s[0] (at most n bytes available), or 0 if
// it is malformed (bad lead or continuation byte, overlong form, surrogate, above U+10FFFF, cut
// short). Stores the code point in *cp.
inline size_t utf8__sequence(const unsigned char* s, size_t n, uint32_t* cp) noexcept {
  unsigned char b = s[0];
  size_t len;
  uint32_t c, min;
  if (b < 0x80) {
    *cp = b;
    return 1;
  } else if (b >= 0xc2 && b <= 0xdf) {
    len = 2, c = b & 0x1f, min = 0x80;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3, c = b & 0x0f, min = 0x800;
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4, c = b & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *cp = c;
  return len;
}

// Return true if code point c is a control character (C0, DEL or C1).
constexpr bool utf8__is_control(uint32_t c) noexcept {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

// Return nullptr if the first `cap` bytes of `name` hold a valid tenant name (NUL within them,
// UTF-8, no control characters), else what is wrong. *bad_at gets the offset of the first bad
// byte (for the refusal text).
inline const char* tenant_name__check(const char* name, size_t cap, size_t* bad_at) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(name);
  size_t i = 0;
  while (i < cap && s[i]) {
    uint32_t cp = 0;
    size_t len = utf8__sequence(s + i, cap - i, &cp);
    *bad_at = i;
    if (len == 0) return "is not valid UTF-8";
    if (utf8__is_control(cp)) return "contains a control character";
    i += len;
  }
  *bad_at = i;
  return i < cap ? nullptr : "is not NUL-terminated";
}

// Write into dst (cap bytes, cap >= 1) a valid tenant name made from the NUL-terminated `src`:
// each malformed byte and each control character becomes '?', and the name is cut at a character
// boundary to fit. Return its length.
inline size_t tenant_name__sanitize(char* dst, size_t cap, const char* src) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(src);
  size_t n = 0;
  while (*s && n + 1 < cap) {
    size_t avail = 0;
    while (avail < 4 && s[avail]) avail++;
    uint32_t cp = 0;
    size_t len = utf8__sequence(s, avail, &cp);
    if (len == 0 || utf8__is_control(cp)) {
      dst[n++] = '?';
      s += len ? len : 1;
      continue;
    }
    if (n + len + 1 > cap) break;  // do not split a character
    for (size_t i = 0; i < len; i++) dst[n++] = static_cast<char>(s[i]);
    s += len;
  }
  dst[n] = '\0';
  return n;
}

}  // namespace fikit
