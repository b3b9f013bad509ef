// Hashes every byte that passes through it, so that whoever streams a blob
// can check at its end, without a second read, that the bytes were the ones
// their digest names. The export streams stored blobs through one (their
// digest) and decompressed layers through another (their diffID). Applying a
// layer hashes in a thread of its own instead (ReadAheadSource, read_ahead.h).
//
//   HashingSource hashed(blob);
//   char buf[65536];
//   for (;;) {
//     IMGPULL_ASSIGN_OR_RETURN(size_t n, hashed.read(buf, sizeof buf));
//     if (n == 0) break;
//   }
//   if (hashed.finish() != expected) return Error(ErrorCode::kCorrupt, "not the blob " + expected.str());
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
