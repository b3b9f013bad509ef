#include "unpack/decompress.h"

#include <string>

namespace imgpull::unpack {
namespace {

// Passes bytes through, failing once more than `max` have come out.
class LimitedSource : public ByteSource {
 public:
  LimitedSource(std::unique_ptr<ByteSource> owned, ByteSource& inner, uint64_t max)
      : owned_(std::move(owned)), inner_(inner), max_(max) {}

  Result<size_t> read(void* buf, size_t n) override {
    IMGPULL_ASSIGN_OR_RETURN(size_t got, inner_.read(buf, n));
    total_ += got;
    if (total_ > max_) {
      return Error(ErrorCode::kTooLarge, "layer expands to more than " + std::to_string(max_) +
                                             " bytes (the uncompressed layer size limit)");
    }
    return got;
  }
  void cancel() override { inner_.cancel(); }

 private:
  std::unique_ptr<ByteSource> owned_;
  ByteSource& inner_;
  uint64_t max_;
  uint64_t total_ = 0;
};

}  // namespace

std::unique_ptr<ByteSource> make_decompressor(Compression compression, ByteSource& compressed,
                                              uint64_t max_output_bytes) {
  std::unique_ptr<ByteSource> decompressor;
  switch (compression) {
    case Compression::kNone: break;
    case Compression::kGzip: decompressor = detail::make_gzip_source(compressed); break;
    case Compression::kZstd: decompressor = detail::make_zstd_source(compressed); break;
  }
  ByteSource& inner = decompressor ? *decompressor : compressed;
  return std::make_unique<LimitedSource>(std::move(decompressor), inner, max_output_bytes);
}

}  // namespace imgpull::unpack
