// How `imgpull pull` shows a pull: the three output modes, as pure code.
//
// Nothing here touches a terminal or a clock: events and the time come in,
// text goes out, so every mode is unit-tested without a terminal
// (progress_test.cpp). tty_progress.h drives PullProgress + TerminalScreen
// on a real terminal.
//
//   terminal  PullProgress (what each line says) + TerminalScreen (the escape
//             sequences that turn the last frame into the next one):
//
//               PullProgress progress("latest: Pulling from library/debian");
//               TerminalScreen screen;
//               progress.on_event(event, now);                  // from the pull
//               std::string frame = screen.update(progress.lines(now, width), width, height);
//               write(STDOUT_FILENO, frame.data(), frame.size());  // one write per frame
//
//   pipe      PlainProgress: docker's non-terminal lines, one per state change.
//   --json    event_json / pulled_json / error_json: one JSON object per line.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imgpull/error.h"
#include "imgpull/client.h"
#include "imgpull/reference.h"

namespace imgpull::cli {

using ProgressClock = std::chrono::steady_clock;

// go-units' HumanSizeWithPrecision: decimal units ("12.35MB"). docker pull
// shows 4 significant digits, docker images 3.
std::string human_size(double bytes, int precision = 3);

// Go's time.Duration.String() for whole seconds: "0s", "42s", "3m7s", "1h2m0s".
std::string human_duration(std::chrono::seconds duration);

// "latest: Pulling from library/debian", the first line docker prints.
std::string pulling_from_line(const Reference& ref);

// The state of one pull as `docker pull` shows it on a terminal: a header,
// one line per layer (Waiting, Downloading [==>  ] 1.2MB/4.5MB, Verifying
// Checksum, Download complete, Extracting [=> ] ..., Pull complete, Already
// exists) and a total line with bytes, rate and ETA.
class PullProgress {
 public:
  explicit PullProgress(std::string header) : header_(std::move(header)) {}

  void on_event(const PullEvent& event, ProgressClock::time_point now);

  // The lines to show at `now`, none longer than width - 1 columns (so that
  // none wraps, whatever the terminal does with the last column). Empty until
  // the manifest is resolved.
  std::vector<std::string> lines(ProgressClock::time_point now, size_t width) const;

  // Bytes per second over the last few seconds; nullopt until there is enough
  // to say.
  std::optional<double> rate(ProgressClock::time_point now) const;

 private:
  enum class Download { kNone, kWaiting, kDownloading, kVerifying, kDone };
  struct Layer {
    Digest digest;
    uint64_t total = 0;
    bool exists = false;
    Download download = Download::kNone;
    uint64_t current = 0;  // bytes downloaded
    bool extracting = false;
    uint64_t extracted = 0;  // compressed bytes applied to the rootfs
    bool complete = false;
  };
  struct Sample {
    ProgressClock::time_point at;
    uint64_t bytes;
  };

  Layer& layer(const Digest& digest);
  std::string layer_line(const Layer& layer, size_t width) const;
  std::optional<std::string> total_line(ProgressClock::time_point now) const;
  uint64_t bytes_done() const;
  void sample(ProgressClock::time_point now);

  std::string header_;
  bool resolved_ = false;
  std::vector<Layer> layers_;  // in manifest order, each digest once
  std::optional<ProgressClock::time_point> started_;   // first layer queued
  std::optional<ProgressClock::time_point> finished_;  // last download verified
  std::deque<Sample> samples_;
};

// Turns successive frames (lists of lines) into the bytes that redraw a
// terminal in place: cursor up to the first changed line, rewrite only the
// lines that changed (each ends with erase-to-end-of-line), cursor down over
// the rest. The cursor rests at the start of the line below the frame.
//
// Lines scrolled above the top of the screen cannot be reached any more; they
// are left as they were (`height` says how many rows are reachable). When the
// terminal gets narrower than lines already drawn, terminals that rewrap
// (tmux, VTE, kitty, iTerm2) have split those lines into several rows: the
// frame is then cleared from where it now starts and drawn again.
class TerminalScreen {
 public:
  // The bytes that turn the last frame into `lines`; "" when nothing changed.
  // `above`: lines printed once, permanently, above the frame (a warning).
  std::string update(const std::vector<std::string>& lines, size_t width, size_t height,
                     const std::vector<std::string>& above = {});

 private:
  std::vector<std::string> drawn_;
  size_t drawn_width_ = 0;
  size_t contiguous_ = 0;  // trailing lines of drawn_ directly above the cursor, in order
};

// docker pull's output when stdout is not a terminal: one line per layer state
// change; progress (Downloading, Extracting) is not shown, as docker drops
// every message that carries a progress bar.
class PlainProgress {
 public:
  explicit PlainProgress(std::string header) : header_(std::move(header)) {}
  // The line to print for `event`, if any (without the newline).
  std::optional<std::string> on_event(const PullEvent& event) const;

 private:
  std::string header_;
};

// --json: one object per line.
//   {"event":"resolved","layers":[{"digest":"sha256:…","size":N},…]}
//   {"event":"downloading","layer":"sha256:…","current":N,"total":N}  (and exists,
//     waiting, verifying, downloaded, extracting, complete)
//   {"event":"pulled","name":…,"digest":…,"manifest":…,"config":…,"up_to_date":…,"bytes_downloaded":N}
//   {"event":"error","code":"not found","message":…}
std::string event_json(const PullEvent& event);
std::string pulled_json(const PullResult& result, const Reference& ref);
std::string error_json(const Error& error);

}  // namespace imgpull::cli
