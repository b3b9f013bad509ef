// gzip through isa-l's igzip inflater. One inflate_state (about 100 KiB, most
// of it the 32 KiB history window) and one input buffer, whatever the stream.
#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "unpack/decompress.h"

namespace imgpull::unpack::detail {
namespace {

std::string_view isal_error_text(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "invalid back-reference distance";
    case ISAL_INVALID_WRAPPER: return "not a gzip member (bad header or trailing bytes)";
    case ISAL_UNSUPPORTED_METHOD: return "unsupported compression method";
    case ISAL_INCORRECT_CHECKSUM: return "CRC-32 or length mismatch";
    default: return "inflate error";
  }
}

class GzipSource : public ByteSource {
 public:
  explicit GzipSource(ByteSource& in)
      : source_(in),
        blocks_(in.blocks()),
        input_(std::make_unique<uint8_t[]>(kDecompressInputBufferBytes)),
        state_(std::make_unique<inflate_state>()) {
    isal_inflate_init(state_.get());
    state_->crc_flag = ISAL_GZIP;  // parse the gzip header, check CRC-32 and ISIZE
    state_->next_in = input_.get();
    state_->avail_in = 0;
  }

  Result<size_t> read(void* buf, size_t n) override {
    if (ended_ || n == 0) return size_t{0};
    auto want = static_cast<uint32_t>(std::min<size_t>(n, std::numeric_limits<uint32_t>::max()));
    state_->next_out = static_cast<uint8_t*>(buf);
    state_->avail_out = want;
    while (state_->avail_out == want) {
      if (state_->block_state == ISAL_BLOCK_FINISH) {
        IMGPULL_ASSIGN_OR_RETURN(bool another, start_next_member());
        if (!another) {
          ended_ = true;
          break;
        }
      }
      IMGPULL_TRY(inflate_some());
    }
    return static_cast<size_t>(want - state_->avail_out);
  }
  void cancel() override { source_.cancel(); }

 private:
  // Runs the inflater once; fails if it can make no progress with all the input there is.
  Status inflate_some() {
    if (state_->avail_in == 0) IMGPULL_TRY(refill());
    uint32_t in_before = state_->avail_in;
    uint32_t out_before = state_->avail_out;
    auto block_before = state_->block_state;
    int rc = isal_inflate(state_.get());
    if (rc < 0) {
      return Error(ErrorCode::kCorrupt, "gzip: " + std::string(isal_error_text(rc)));
    }
    if (state_->avail_in != in_before || state_->avail_out != out_before ||
        state_->block_state != block_before) {
      return ok_status();
    }
    if (in_eof_) return Error(ErrorCode::kCorrupt, "gzip: stream is truncated or empty");
    return refill();  // it needs more bytes than it has before it can go on
  }

  // After a member ends: true if another member follows (pigz, `cat a.gz b.gz`), false at
  // the end of the input. Whatever follows must be a gzip member; the next inflate fails
  // on anything else.
  Result<bool> start_next_member() {
    if (state_->avail_in == 0 && !in_eof_) IMGPULL_TRY(refill());
    if (state_->avail_in == 0) return false;
    uint8_t* next_in = state_->next_in;
    uint32_t avail_in = state_->avail_in;
    uint8_t* next_out = state_->next_out;
    uint32_t avail_out = state_->avail_out;
    isal_inflate_reset(state_.get());
    state_->crc_flag = ISAL_GZIP;
    state_->next_in = next_in;
    state_->avail_in = avail_in;
    state_->next_out = next_out;
    state_->avail_out = avail_out;
    return true;
  }

  // Gives the inflater more input. From a source that lends blocks (a
  // read-ahead), they are inflated where they are (the reads and their copy
  // ran in its thread);
  // otherwise, or when the inflater needs more than the rest of a block to go
  // on, unread input moves to the front of our buffer and more is read behind it.
  Status refill() {
    if (blocks_ != nullptr) return refill_from_blocks();
    IMGPULL_TRY(keep_unread_input());
    uint8_t* base = input_.get();
    IMGPULL_ASSIGN_OR_RETURN(size_t got, source_.read(base + state_->avail_in,
                                                      kDecompressInputBufferBytes - state_->avail_in));
    if (got == 0) in_eof_ = true;
    state_->avail_in += static_cast<uint32_t>(got);
    return ok_status();
  }

  Status refill_from_blocks() {
    if (rest_.empty()) {
      // Copied out first: the unread input may lie in the block next_block() releases.
      if (state_->avail_in > 0) IMGPULL_TRY(keep_unread_input());
      IMGPULL_ASSIGN_OR_RETURN(rest_, blocks_->next_block());
      if (rest_.empty()) {
        in_eof_ = true;
        return ok_status();
      }
    }
    if (state_->avail_in == 0) {  // the usual case: inflate the block where it is
      state_->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(rest_.data()));
      state_->avail_in = static_cast<uint32_t>(rest_.size());
      rest_ = {};
      return ok_status();
    }
    IMGPULL_TRY(keep_unread_input());
    size_t take = std::min<size_t>(rest_.size(), kDecompressInputBufferBytes - state_->avail_in);
    std::memcpy(input_.get() + state_->avail_in, rest_.data(), take);
    rest_ = rest_.subspan(take);
    state_->avail_in += static_cast<uint32_t>(take);
    return ok_status();
  }

  // Moves the input the inflater has not taken to the front of our buffer, which
  // must have room for more behind it.
  Status keep_unread_input() {
    uint8_t* base = input_.get();
    if (state_->avail_in >= kDecompressInputBufferBytes) {
      return Error(ErrorCode::kInternal, "gzip: inflater stalled on a full buffer");
    }
    if (state_->avail_in > 0 && state_->next_in != base) {
      std::memmove(base, state_->next_in, state_->avail_in);
    }
    state_->next_in = base;
    return ok_status();
  }

  ByteSource& source_;
  BlockSource* blocks_;            // source_'s blocks, when it lends them
  std::span<const char> rest_;     // what is left of the block blocks_ last gave
  std::unique_ptr<uint8_t[]> input_;
  std::unique_ptr<inflate_state> state_;
  bool in_eof_ = false;
  bool ended_ = false;
};

}  // namespace

std::unique_ptr<ByteSource> make_gzip_source(ByteSource& compressed) {
  return std::make_unique<GzipSource>(compressed);
}

}  // namespace imgpull::unpack::detail
