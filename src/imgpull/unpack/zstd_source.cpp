// zstd through ZSTD_decompressStream: one DCtx (its window capped by
// kMaxZstdWindowLog) and one input buffer, whatever the stream.
#include <zstd.h>
#include <zstd_errors.h>

#include <string>

#include "unpack/decompress.h"

namespace imgpull::unpack::detail {
namespace {

struct DCtxDeleter {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};

class ZstdSource : public ByteSource {
 public:
  explicit ZstdSource(ByteSource& in)
      : source_(in),
        blocks_(in.blocks()),
        ctx_(ZSTD_createDCtx()),
        capacity_(ZSTD_DStreamInSize()),
        input_(std::make_unique<char[]>(capacity_)) {
    ZSTD_DCtx_setParameter(ctx_.get(), ZSTD_d_windowLogMax, kMaxZstdWindowLog);
  }

  Result<size_t> read(void* buf, size_t n) override {
    if (!ctx_) return Error(ErrorCode::kInternal, "zstd: out of memory creating a context");
    ZSTD_outBuffer out{buf, n, 0};
    while (out.pos == 0 && n > 0) {
      if (in_.pos == in_.size && !in_eof_) IMGPULL_TRY(refill());
      if (in_.pos == in_.size && in_eof_ && !frame_open_) {
        if (!saw_input_) return Error(ErrorCode::kCorrupt, "zstd: stream is empty");
        break;  // the end, between frames
      }
      IMGPULL_TRY(decompress_some(out));
    }
    return out.pos;
  }
  void cancel() override { source_.cancel(); }

 private:
  Status decompress_some(ZSTD_outBuffer& out) {
    size_t in_before = in_.pos;
    size_t rc = ZSTD_decompressStream(ctx_.get(), &out, &in_);
    if (ZSTD_isError(rc)) {
      bool too_big = ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge;
      return Error(too_big ? ErrorCode::kTooLarge : ErrorCode::kCorrupt,
                   std::string("zstd: ") + ZSTD_getErrorName(rc));
    }
    frame_open_ = rc != 0;  // 0: a frame ended and is fully flushed
    if (out.pos == 0 && in_.pos == in_before && in_.pos == in_.size && in_eof_) {
      return Error(ErrorCode::kCorrupt, "zstd: stream is truncated");
    }
    return ok_status();
  }

  // Called once all input was taken in (zstd keeps what it needs of it). From a
  // source that lends blocks (a read-ahead) they are decompressed where they are.
  Status refill() {
    if (blocks_ != nullptr) {
      IMGPULL_ASSIGN_OR_RETURN(auto block, blocks_->next_block());  // releases the last block
      (block.empty() ? in_eof_ : saw_input_) = true;
      in_ = ZSTD_inBuffer{block.data(), block.size(), 0};
      return ok_status();
    }
    IMGPULL_ASSIGN_OR_RETURN(size_t got, source_.read(input_.get(), capacity_));
    if (got == 0) in_eof_ = true;
    if (got > 0) saw_input_ = true;
    in_ = ZSTD_inBuffer{input_.get(), got, 0};
    return ok_status();
  }

  ByteSource& source_;
  BlockSource* blocks_;  // source_'s blocks, when it lends them
  std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx_;
  size_t capacity_;
  std::unique_ptr<char[]> input_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  bool in_eof_ = false;
  bool saw_input_ = false;
  bool frame_open_ = false;
};

}  // namespace

std::unique_ptr<ByteSource> make_zstd_source(ByteSource& compressed) {
  return std::make_unique<ZstdSource>(compressed);
}

}  // namespace imgpull::unpack::detail
