// What the fuzz targets use to state a property: FUZZ_CHECK(cond) << "..."
// prints the message and aborts, so libFuzzer records the input as a crash
// (a failed property is a finding just as a sanitizer report is).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace imgpull::fuzz {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition) {
    stream_ << file << ":" << line << ": property failed: " << condition << "\n  ";
  }
  [[noreturn]] ~CheckFailure() {
    std::string text = stream_.str();
    std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
    std::abort();
  }
  template <typename T>
  CheckFailure& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

}  // namespace imgpull::fuzz

#define FUZZ_CHECK(condition) \
  if (condition) {            \
  } else                      \
    ::imgpull::fuzz::CheckFailure(__FILE__, __LINE__, #condition)
