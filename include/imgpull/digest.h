// Content digests: the only way a blob is named, in URLs and on disk.
//
// A Digest can only be made by its parser (or by hashing), so a string like
// "sha256:../../etc" can never reach a path or a URL.
//
//   IMGPULL_ASSIGN_OR_RETURN(Digest d, Digest::parse("sha256:e3b0..."));
//   Hasher h(d.algorithm());
//   h.update(bytes);
//   if (h.finish() != d) return Error(ErrorCode::kCorrupt, "not the bytes " + d.str() + " names");
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "imgpull/error.h"

namespace imgpull {

enum class DigestAlgorithm { kSha256, kSha512 };

class Digest {
 public:
  // Accepts "sha256:<64 lower-case hex>" and "sha512:<128 lower-case hex>".
  static Result<Digest> parse(std::string_view text);
  static Digest of(std::string_view bytes, DigestAlgorithm algorithm = DigestAlgorithm::kSha256);

  DigestAlgorithm algorithm() const { return algorithm_; }
  std::string_view algorithm_name() const;
  const std::string& hex() const { return hex_; }
  std::string str() const;
  // The first 12 hex characters, as `docker images` shows an IMAGE ID.
  std::string short_hex() const { return hex_.substr(0, 12); }

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  Digest(DigestAlgorithm algorithm, std::string hex) : algorithm_(algorithm), hex_(std::move(hex)) {}
  friend class Hasher;

  DigestAlgorithm algorithm_;
  std::string hex_;
};

// Streaming hash through OpenSSL's EVP (SHA-NI where the CPU has it).
class Hasher {
 public:
  explicit Hasher(DigestAlgorithm algorithm = DigestAlgorithm::kSha256);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  uint64_t bytes_hashed() const { return bytes_; }
  // Ends the stream; the Hasher must not be updated afterwards.
  Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DigestAlgorithm algorithm_;
  uint64_t bytes_ = 0;
};

}  // namespace imgpull
