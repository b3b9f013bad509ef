#include "progress.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace imgpull::cli {
namespace {

using namespace std::chrono_literals;
using Kind = PullEvent::Kind;

Digest digest_of(char c) { return Digest::parse("sha256:" + std::string(64, c)).value(); }

Descriptor layer_desc(char c, int64_t size) {
  return Descriptor{"application/vnd.oci.image.layer.v1.tar+gzip", digest_of(c), size, {}, {}, std::nullopt};
}

PullEvent resolved(std::vector<Descriptor> layers) { return PullEvent{Kind::kResolved, std::nullopt, 0, 0, std::move(layers)}; }

PullEvent ev(Kind kind, char c, uint64_t current, uint64_t total) {
  return PullEvent{kind, digest_of(c), current, total, {}};
}

const ProgressClock::time_point t0{};

// A small terminal: printable ASCII, \r, \n (scrolls at the bottom), CUU, CUD,
// EL (0) and ED (0); lines longer than the width wrap (and would show up as
// extra rows, which the tests look for). Rows that scroll off the top go to
// `history`.
class FakeTerminal {
 public:
  FakeTerminal(size_t width, size_t height) : width_(width), rows_(height) {}

  void write(const std::string& bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      char c = bytes[i];
      if (c == '\x1b') {
        ASSERT_LT(i + 1, bytes.size());
        ASSERT_EQ(bytes[i + 1], '[');
        size_t j = i + 2;
        int n = 0;
        bool has_n = false;
        while (j < bytes.size() && isdigit(static_cast<unsigned char>(bytes[j]))) {
          n = n * 10 + (bytes[j] - '0');
          has_n = true;
          ++j;
        }
        ASSERT_LT(j, bytes.size());
        if (!has_n) n = bytes[j] == 'A' || bytes[j] == 'B' ? 1 : 0;
        switch (bytes[j]) {
          case 'A': y_ = y_ >= static_cast<size_t>(n) ? y_ - n : 0; break;
          case 'B': y_ = std::min(rows_.size() - 1, y_ + n); break;
          case 'K': ASSERT_EQ(n, 0); rows_[y_].resize(std::min(rows_[y_].size(), x_)); break;
          case 'J':
            ASSERT_EQ(n, 0);
            rows_[y_].resize(std::min(rows_[y_].size(), x_));
            for (size_t r = y_ + 1; r < rows_.size(); ++r) rows_[r].clear();
            break;
          default: FAIL() << "unexpected escape " << bytes[j];
        }
        i = j;
      } else if (c == '\r') {
        x_ = 0;
      } else if (c == '\n') {
        x_ = 0;
        newline();
      } else {
        ASSERT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(c);
        if (x_ == width_) {  // autowrap
          x_ = 0;
          newline();
        }
        if (rows_[y_].size() <= x_) rows_[y_].resize(x_ + 1, ' ');
        rows_[y_][x_++] = c;
      }
    }
  }

  // The screen's rows, from the top, trailing empty rows dropped.
  std::vector<std::string> screen() const {
    std::vector<std::string> out(rows_.begin(), rows_.end());
    while (!out.empty() && out.back().empty()) out.pop_back();
    return out;
  }
  size_t cursor_y() const { return y_; }
  size_t cursor_x() const { return x_; }

 private:
  void newline() {
    if (y_ + 1 < rows_.size()) {
      ++y_;
    } else {
      history.push_back(rows_.front());
      rows_.erase(rows_.begin());
      rows_.emplace_back();
    }
  }

 public:
  std::vector<std::string> history;

 private:
  size_t width_;
  std::vector<std::string> rows_;
  size_t x_ = 0, y_ = 0;
};

TEST(HumanSize, FourSignificantDigitsAsDockerPull) {
  EXPECT_EQ(human_size(0, 4), "0B");
  EXPECT_EQ(human_size(999, 4), "999B");
  EXPECT_EQ(human_size(12'345'678, 4), "12.35MB");
  EXPECT_EQ(human_size(29'540'000, 4), "29.54MB");
  EXPECT_EQ(human_size(1'200'000, 3), "1.2MB");
}

TEST(HumanDuration, AsGoPrintsWholeSeconds) {
  EXPECT_EQ(human_duration(0s), "0s");
  EXPECT_EQ(human_duration(42s), "42s");
  EXPECT_EQ(human_duration(187s), "3m7s");
  EXPECT_EQ(human_duration(3720s), "1h2m0s");
}

TEST(PullProgress, NothingBeforeTheManifestIsResolved) {
  PullProgress p("latest: Pulling from x");
  EXPECT_TRUE(p.lines(t0, 100).empty());
}

TEST(PullProgress, OneLinePerLayerInManifestOrderEachDigestOnce) {
  PullProgress p("latest: Pulling from x");
  p.on_event(resolved({layer_desc('a', 1000), layer_desc('b', 2000), layer_desc('a', 1000)}), t0);
  p.on_event(ev(Kind::kLayerExists, 'a', 0, 1000), t0);
  p.on_event(ev(Kind::kLayerWaiting, 'b', 0, 2000), t0);
  EXPECT_EQ(p.lines(t0, 100), (std::vector<std::string>{"latest: Pulling from x", "aaaaaaaaaaaa: Already exists",
                                                        "bbbbbbbbbbbb: Waiting", "Total: 0B/2kB"}));
}

TEST(PullProgress, DownloadingShowsDockersBarAndNumbers) {
  PullProgress p("h");
  p.on_event(resolved({layer_desc('a', 1'000'000)}), t0);
  p.on_event(ev(Kind::kLayerWaiting, 'a', 0, 1'000'000), t0);
  p.on_event(ev(Kind::kLayerDownloading, 'a', 250'000, 1'000'000), t0);
  // docker: 25% of 50 cells, the arrow, the rest blank; the current size right-aligned in 8.
  EXPECT_EQ(p.lines(t0, 200)[1], "aaaaaaaaaaaa: Downloading [============>" + std::string(38, ' ') + "]    250kB/1MB");
}

TEST(PullProgress, EveryLineFitsTheWidthAndTheBarShrinksThenGoes) {
  PullProgress p("latest: Pulling from some/rather/long/repository/name/for/a/narrow/terminal");
  p.on_event(resolved({layer_desc('a', 45'600'000), layer_desc('b', 100)}), t0);
  p.on_event(ev(Kind::kLayerWaiting, 'a', 0, 45'600'000), t0);
  p.on_event(ev(Kind::kLayerDownloading, 'a', 12'300'000, 45'600'000), t0 + 2s);
  for (size_t width = 1; width <= 200; ++width) {
    for (const auto& line : p.lines(t0 + 2s, width)) {
      EXPECT_LE(line.size(), std::max<size_t>(1, width - 1)) << width << ": " << line;
    }
  }
  EXPECT_EQ(p.lines(t0 + 2s, 60)[1], "aaaaaaaaaaaa: Downloading [===>           ]   12.3MB/45.6MB");
  EXPECT_EQ(p.lines(t0 + 2s, 50)[1], "aaaaaaaaaaaa: Downloading   12.3MB/45.6MB");
}

TEST(PullProgress, StatesOfAPullWithoutRootfs) {
  PullProgress p("h");
  p.on_event(resolved({layer_desc('a', 100)}), t0);
  auto line = [&] { return p.lines(t0, 100)[1]; };
  EXPECT_EQ(line(), "aaaaaaaaaaaa: Pulling fs layer");
  p.on_event(ev(Kind::kLayerWaiting, 'a', 0, 100), t0);
  EXPECT_EQ(line(), "aaaaaaaaaaaa: Waiting");
  p.on_event(ev(Kind::kLayerVerifying, 'a', 100, 100), t0);
  EXPECT_EQ(line(), "aaaaaaaaaaaa: Verifying Checksum");
  p.on_event(ev(Kind::kLayerDownloaded, 'a', 100, 100), t0);
  EXPECT_EQ(line(), "aaaaaaaaaaaa: Download complete");
  p.on_event(ev(Kind::kLayerComplete, 'a', 100, 100), t0);
  EXPECT_EQ(line(), "aaaaaaaaaaaa: Pull complete");
}

TEST(PullProgress, WithRootfsExtractingFollowsTheDownload) {
  PullProgress p("h");
  p.on_event(resolved({layer_desc('a', 1'000'000), layer_desc('b', 1'000'000)}), t0);
  p.on_event(ev(Kind::kLayerExists, 'a', 0, 1'000'000), t0);
  p.on_event(ev(Kind::kLayerWaiting, 'b', 0, 1'000'000), t0);
  // The applier starts on the existing layer, then waits for b's bytes.
  p.on_event(ev(Kind::kLayerExtracting, 'a', 0, 1'000'000), t0);
  p.on_event(ev(Kind::kLayerExtracting, 'a', 500'000, 1'000'000), t0);
  EXPECT_EQ(p.lines(t0, 60)[1], "aaaaaaaaaaaa: Extracting [=========>         ]    500kB/1MB");
  p.on_event(ev(Kind::kLayerExtracting, 'a', 1'000'000, 1'000'000), t0);
  EXPECT_EQ(p.lines(t0, 60)[1], "aaaaaaaaaaaa: Already exists");
  // b is extracted while it downloads: the download is what its line shows.
  p.on_event(ev(Kind::kLayerExtracting, 'b', 0, 1'000'000), t0);
  p.on_event(ev(Kind::kLayerDownloading, 'b', 600'000, 1'000'000), t0);
  p.on_event(ev(Kind::kLayerExtracting, 'b', 524'288, 1'000'000), t0);
  EXPECT_EQ(p.lines(t0, 200)[2].substr(0, 26), "bbbbbbbbbbbb: Downloading ");
  p.on_event(ev(Kind::kLayerVerifying, 'b', 1'000'000, 1'000'000), t0);
  p.on_event(ev(Kind::kLayerDownloaded, 'b', 1'000'000, 1'000'000), t0);
  EXPECT_EQ(p.lines(t0, 200)[2].substr(0, 25), "bbbbbbbbbbbb: Extracting ");
  p.on_event(ev(Kind::kLayerExtracting, 'b', 1'000'000, 1'000'000), t0);
  p.on_event(ev(Kind::kLayerComplete, 'b', 1'000'000, 1'000'000), t0);
  EXPECT_EQ(p.lines(t0, 200)[2], "bbbbbbbbbbbb: Pull complete");
}

TEST(PullProgress, TotalLineHasBytesRateAndEta) {
  PullProgress p("h");
  p.on_event(resolved({layer_desc('a', 6'000'000), layer_desc('b', 4'000'000)}), t0);
  p.on_event(ev(Kind::kLayerWaiting, 'a', 0, 6'000'000), t0);
  p.on_event(ev(Kind::kLayerWaiting, 'b', 0, 4'000'000), t0);
  // Before half a second of transfer there is no rate to speak of.
  p.on_event(ev(Kind::kLayerDownloading, 'a', 100'000, 6'000'000), t0);
  EXPECT_EQ(p.lines(t0 + 100ms, 100).back(), "Total: 100kB/10MB");
  // 1 MB/s, steadily, from both layers together.
  for (int s = 1; s <= 4; ++s) {
    p.on_event(ev(Kind::kLayerDownloading, 'a', 100'000 + s * 500'000, 6'000'000), t0 + s * 1s);
    p.on_event(ev(Kind::kLayerDownloading, 'b', s * 500'000, 4'000'000), t0 + s * 1s);
  }
  EXPECT_EQ(p.lines(t0 + 4s, 100).back(), "Total: 4.1MB/10MB  1MB/s  ETA 6s");
  // A stall: the rate decays and the ETA goes.
  EXPECT_EQ(p.lines(t0 + 30s, 100).back(), "Total: 4.1MB/10MB  0B/s");
  p.on_event(ev(Kind::kLayerDownloaded, 'a', 6'000'000, 6'000'000), t0 + 31s);
  p.on_event(ev(Kind::kLayerDownloaded, 'b', 4'000'000, 4'000'000), t0 + 40s);
  EXPECT_EQ(p.lines(t0 + 50s, 100).back(), "Downloaded 10MB in 40.0s (250kB/s)");
}

TEST(PullProgress, RateOfABurstCountsFromTheStart) {
  PullProgress p("h");
  p.on_event(resolved({layer_desc('a', 10'000'000)}), t0);
  p.on_event(ev(Kind::kLayerWaiting, 'a', 0, 10'000'000), t0);
  p.on_event(ev(Kind::kLayerDownloading, 'a', 1'000'000, 10'000'000), t0 + 100ms);
  p.on_event(ev(Kind::kLayerDownloading, 'a', 2'000'000, 10'000'000), t0 + 120ms);
  EXPECT_EQ(p.rate(t0 + 1s), 2'000'000.0);
  EXPECT_EQ(p.rate(t0 + 2s), 1'000'000.0);
}

TEST(PullProgress, AQuickPullTookMilliseconds) {
  PullProgress p("h");
  p.on_event(resolved({layer_desc('a', 1'200'000)}), t0);
  p.on_event(ev(Kind::kLayerWaiting, 'a', 0, 1'200'000), t0);
  p.on_event(ev(Kind::kLayerDownloaded, 'a', 1'200'000, 1'200'000), t0 + 15ms);
  EXPECT_EQ(p.lines(t0 + 20ms, 100).back(), "Downloaded 1.2MB in 15ms (80MB/s)");
}

TEST(PullProgress, NoTotalLineWhenEverythingExists) {
  PullProgress p("h");
  p.on_event(resolved({layer_desc('a', 100)}), t0);
  p.on_event(ev(Kind::kLayerExists, 'a', 0, 100), t0);
  EXPECT_EQ(p.lines(t0, 100), (std::vector<std::string>{"h", "aaaaaaaaaaaa: Already exists"}));
}

// ---- TerminalScreen ----

TEST(TerminalScreen, FirstFrameIsTheLines) {
  TerminalScreen s;
  EXPECT_EQ(s.update({"a", "b"}, 80, 24), "\ra\x1b[K\n\rb\x1b[K\n");
  EXPECT_EQ(s.update({"a", "b"}, 80, 24), "") << "nothing changed, nothing written";
}

TEST(TerminalScreen, RewritesOnlyTheLinesThatChanged) {
  TerminalScreen s;
  (void)s.update({"head", "one", "two", "three"}, 80, 24);
  EXPECT_EQ(s.update({"head", "ONE", "two", "three"}, 80, 24), "\x1b[3A\rONE\x1b[K\n\x1b[2B");
  EXPECT_EQ(s.update({"head", "ONE", "two", "THREE", "total"}, 80, 24), "\x1b[1A\rTHREE\x1b[K\n\rtotal\x1b[K\n");
}

TEST(TerminalScreen, TruncatesToOneLessThanTheWidth) {
  TerminalScreen s;
  EXPECT_EQ(s.update({"0123456789"}, 8, 24), "\r0123456\x1b[K\n");
}

TEST(TerminalScreen, LinesPrintedAboveStayAndTheFrameIsRedrawnBelow) {
  TerminalScreen s;
  FakeTerminal term(40, 10);
  term.write(s.update({"head", "one"}, 40, 10));
  term.write(s.update({"head", "two"}, 40, 10, {"Warning: careful"}));
  EXPECT_EQ(term.screen(), (std::vector<std::string>{"Warning: careful", "head", "two"}));
  term.write(s.update({"head", "three"}, 40, 10));
  EXPECT_EQ(term.screen(), (std::vector<std::string>{"Warning: careful", "head", "three"}));
}

TEST(TerminalScreen, NarrowerTerminalThatRewrapsGetsTheFrameRedrawn) {
  TerminalScreen s;
  std::string first = s.update({"head", std::string(70, 'x'), "short"}, 100, 30);
  // The 70-column line now takes two rows of 40: the frame starts 4 rows up.
  EXPECT_EQ(s.update({"head", std::string(39, 'y'), "short"}, 40, 30),
            "\x1b[4A\r\x1b[J" "head\n" + std::string(39, 'y') + "\nshort\n");
  // Wider again: nothing wraps, only the changed line is written.
  EXPECT_EQ(s.update({"head", std::string(39, 'y'), "long"}, 100, 30), "\x1b[1A\rlong\x1b[K\n");
}

TEST(TerminalScreen, LinesScrolledOffTheTopAreLeftAlone) {
  TerminalScreen s;
  FakeTerminal term(20, 4);  // 3 rows above the cursor
  std::vector<std::string> frame{"l0", "l1", "l2", "l3", "l4"};
  term.write(s.update(frame, 20, 4));
  frame = {"L0", "l1", "l2", "L3", "L4"};
  term.write(s.update(frame, 20, 4));
  EXPECT_EQ(term.screen(), (std::vector<std::string>{"l2", "L3", "L4"}));
  EXPECT_EQ(term.history, (std::vector<std::string>{"l0", "l1"}));
}

// Random pulls drawn on a fake terminal at random sizes: after every frame
// the screen shows exactly the frame, one row per line.
TEST(TerminalScreen, ScreenAlwaysEqualsTheLatestFrame) {
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    const size_t width = 30 + rng() % 150;
    FakeTerminal term(width, 40);
    TerminalScreen screen;
    PullProgress p("latest: Pulling from x");
    std::vector<Descriptor> layers;
    size_t count = 1 + rng() % 6;
    for (size_t i = 0; i < count; ++i) layers.push_back(layer_desc(static_cast<char>('a' + i), 1 + rng() % 50'000'000));
    p.on_event(resolved(layers), t0);
    for (const auto& l : layers) p.on_event(ev(Kind::kLayerWaiting, l.digest.hex()[0], 0, l.size), t0);
    std::vector<uint64_t> got(count, 0);
    auto now = t0;
    for (int step = 0; step < 60; ++step) {
      now += std::chrono::milliseconds(rng() % 300);
      size_t i = rng() % count;
      auto total = static_cast<uint64_t>(layers[i].size);
      got[i] = std::min(total, got[i] + rng() % 5'000'000);
      char c = static_cast<char>('a' + i);
      p.on_event(ev(got[i] == total ? Kind::kLayerDownloaded : Kind::kLayerDownloading, c, got[i], total), now);
      auto lines = p.lines(now, width);
      term.write(screen.update(lines, width, 40));
      std::vector<std::string> want;
      for (auto& l : lines) want.push_back(l.substr(0, width - 1));
      ASSERT_EQ(term.screen(), want) << "round " << round << " step " << step;
      ASSERT_EQ(term.cursor_y(), want.size());
      ASSERT_EQ(term.cursor_x(), 0u);
    }
  }
}

// ---- PlainProgress ----

TEST(PlainProgress, DockersLinesForAPipe) {
  PlainProgress p("latest: Pulling from x");
  EXPECT_EQ(p.on_event(resolved({layer_desc('a', 100)})), "latest: Pulling from x");
  EXPECT_EQ(p.on_event(ev(Kind::kLayerExists, 'a', 0, 100)), "aaaaaaaaaaaa: Already exists");
  EXPECT_EQ(p.on_event(ev(Kind::kLayerWaiting, 'a', 0, 100)), "aaaaaaaaaaaa: Pulling fs layer");
  EXPECT_EQ(p.on_event(ev(Kind::kLayerDownloading, 'a', 10, 100)), std::nullopt);
  EXPECT_EQ(p.on_event(ev(Kind::kLayerVerifying, 'a', 100, 100)), "aaaaaaaaaaaa: Verifying Checksum");
  EXPECT_EQ(p.on_event(ev(Kind::kLayerDownloaded, 'a', 100, 100)), "aaaaaaaaaaaa: Download complete");
  EXPECT_EQ(p.on_event(ev(Kind::kLayerExtracting, 'a', 10, 100)), std::nullopt);
  EXPECT_EQ(p.on_event(ev(Kind::kLayerComplete, 'a', 100, 100)), "aaaaaaaaaaaa: Pull complete");
}

// ---- --json ----

TEST(Json, EventsAreOneObjectEach) {
  auto r = nlohmann::json::parse(event_json(resolved({layer_desc('a', 100)})));
  EXPECT_EQ(r["event"], "resolved");
  EXPECT_EQ(r["layers"][0]["digest"], digest_of('a').str());
  EXPECT_EQ(r["layers"][0]["size"], 100);
  auto d = nlohmann::json::parse(event_json(ev(Kind::kLayerDownloading, 'a', 10, 100)));
  EXPECT_EQ(d, nlohmann::json::parse(R"({"event":"downloading","layer":")" + digest_of('a').str() +
                                     R"(","current":10,"total":100})"));
  auto e = nlohmann::json::parse(error_json(Error(ErrorCode::kNotFound, "manifest unknown")));
  EXPECT_EQ(e, nlohmann::json::parse(R"({"event":"error","code":"not found","message":"manifest unknown"})"));
  EXPECT_EQ(event_json(ev(Kind::kLayerComplete, 'a', 100, 100)).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace imgpull::cli
