// Errors as values. Every fallible function in libimgpull returns a
// Result<T> (or Status, for no value) carrying either the value or an Error: a
// code a caller can branch on plus a message that names what was being done
// (image, layer, URL) and what was expected versus what came.
//
//   Result<ParsedManifest> m = parse_manifest(bytes, content_type);
//   if (!m) return std::move(m).error().wrap("pulling " + ref.str());
//
// IMGPULL_TRY and IMGPULL_ASSIGN_OR_RETURN keep call sites short.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace imgpull {

enum class ErrorCode {
  kInvalidArgument,  // the caller's input is malformed (a reference, a flag)
  kNotFound,         // the registry or the store does not have it
  kUnauthorized,     // credentials are missing or were rejected (HTTP 401)
  kDenied,           // authenticated but not allowed (HTTP 403)
  kCorrupt,          // bytes that do not match their digest, size or schema
  kUnsupported,      // a well-formed thing we do not handle (schema 1, ...)
  kUnavailable,      // network, DNS, 5xx: the other side could not serve
  kTls,              // TLS handshake failed or the peer's certificate is not trusted
  kTooLarge,         // over one of our named limits
  kIo,               // the local filesystem failed us
  kInternal,         // a bug in imgpull
  kCancelled,        // the caller asked to stop (an interrupt); nothing is wrong
};

std::string_view to_string(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes context ("pulling docker.io/library/x:1"), outermost first.
  Error& wrap(std::string_view context) & {
    message_ = std::string(context) + ": " + message_;
    return *this;
  }
  Error wrap(std::string_view context) && {
    wrap(context);
    return std::move(*this);
  }

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace imgpull

#define IMGPULL_CONCAT_INNER(a, b) a##b
#define IMGPULL_CONCAT(a, b) IMGPULL_CONCAT_INNER(a, b)

// Returns the error of a Status/Result expression from the enclosing function.
#define IMGPULL_TRY(expr)                                    \
  do {                                                       \
    auto imgpull_try_result_ = (expr);                       \
    if (!imgpull_try_result_) return std::move(imgpull_try_result_).error(); \
  } while (0)

// `IMGPULL_ASSIGN_OR_RETURN(auto x, f());` declares x from a Result's value or
// returns its error.
#define IMGPULL_ASSIGN_OR_RETURN(lhs, expr) \
  IMGPULL_ASSIGN_OR_RETURN_IMPL(IMGPULL_CONCAT(imgpull_result_, __LINE__), lhs, expr)
#define IMGPULL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp) return std::move(tmp).error();            \
  lhs = std::move(tmp).value()
