// Hashes every byte that passes through it: placed between the decompressor and
// the tar reader, it computes a layer's diffID (the digest of the uncompressed
// tar stream) from exactly the bytes the tar reader was given.
//
//   HashingSource tar_bytes(*decompressor);
//   ... read tar_bytes to its end ...
//   Digest diff_id = tar_bytes.finish();
#pragma once

#include "imgpull/digest.h"
#include "base/byte_source.h"

namespace imgpull::unpack {

class HashingSource : public ByteSource {
 public:
  explicit HashingSource(ByteSource& inner, DigestAlgorithm algorithm = DigestAlgorithm::kSha256)
      : inner_(inner), hasher_(algorithm) {}

  Result<size_t> read(void* buf, size_t n) override {
    IMGPULL_ASSIGN_OR_RETURN(size_t got, inner_.read(buf, n));
    hasher_.update(buf, got);
    return got;
  }

  void cancel() override { inner_.cancel(); }

  uint64_t bytes() const { return hasher_.bytes_hashed(); }
  // Ends the stream; read no more afterwards.
  Digest finish() { return hasher_.finish(); }

 private:
  ByteSource& inner_;
  Hasher hasher_;
};

}  // namespace imgpull::unpack
