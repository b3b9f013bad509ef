#include "progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace imgpull::cli {
namespace {

// docker's progress bar is 50 cells; narrower terminals get a shorter one, and
// below this many cells the bar is left out (the numbers still say it).
constexpr size_t kMaxBarCells = 50;
constexpr size_t kMinBarCells = 10;
// The transfer rate is measured over this window: long enough to be steady,
// short enough to show a stall within a few seconds.
constexpr auto kRateWindow = std::chrono::seconds(3);
// Events closer together than this share one rate sample.
constexpr auto kSampleSpacing = std::chrono::milliseconds(50);
// No rate (and no ETA) is shown before this much of the transfer was seen.
constexpr auto kMinRateSpan = std::chrono::milliseconds(500);
// Width assumed when the terminal does not say.
constexpr size_t kDefaultWidth = 80;

std::string truncate(std::string line, size_t width) {
  size_t limit = width > 1 ? width - 1 : 1;
  if (line.size() > limit) line.resize(limit);
  return line;
}

std::string_view kind_name(PullEvent::Kind kind) {
  switch (kind) {
    case PullEvent::Kind::kResolved: return "resolved";
    case PullEvent::Kind::kLayerExists: return "exists";
    case PullEvent::Kind::kLayerWaiting: return "waiting";
    case PullEvent::Kind::kLayerResumed: return "resumed";
    case PullEvent::Kind::kLayerRefetching: return "refetching";
    case PullEvent::Kind::kLayerDownloading: return "downloading";
    case PullEvent::Kind::kLayerVerifying: return "verifying";
    case PullEvent::Kind::kLayerDownloaded: return "downloaded";
    case PullEvent::Kind::kLayerExtracting: return "extracting";
    case PullEvent::Kind::kLayerComplete: return "complete";
  }
  return "unknown";
}

}  // namespace

std::string human_size(double bytes, int precision) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 5) {
    bytes /= 1000;
    ++unit;
  }
  return fmt::format("{:.{}g}{}", bytes, precision, kUnits[unit]);
}

std::string human_duration(std::chrono::seconds duration) {
  long s = std::max<long>(0, static_cast<long>(duration.count()));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{}s", s / 60, s % 60);
  return fmt::format("{}h{}m{}s", s / 3600, s / 60 % 60, s % 60);
}

std::string pulling_from_line(const Reference& ref) {
  return fmt::format("{}: Pulling from {}", ref.digest ? ref.digest->str() : ref.tag.value_or("latest"),
                     ref.path);
}

// ---- PullProgress ----

PullProgress::Layer& PullProgress::layer(const Digest& digest) {
  for (auto& l : layers_) {
    if (l.digest == digest) return l;
  }
  layers_.push_back(Layer{digest});
  return layers_.back();
}

void PullProgress::on_event(const PullEvent& event, ProgressClock::time_point now) {
  if (event.kind == PullEvent::Kind::kResolved) {
    resolved_ = true;
    for (const auto& d : event.layers) layer(d.digest).total = static_cast<uint64_t>(std::max<int64_t>(0, d.size));
    return;
  }
  if (!event.layer) return;
  Layer& l = layer(*event.layer);
  if (event.total > 0) l.total = event.total;
  switch (event.kind) {
    case PullEvent::Kind::kResolved: break;
    case PullEvent::Kind::kLayerExists: l.exists = true; break;
    case PullEvent::Kind::kLayerWaiting:
      l.download = Download::kWaiting;
      if (!started_) {
        started_ = now;
        sample(now);  // the rate's first baseline: nothing yet
      }
      break;
    case PullEvent::Kind::kLayerResumed:     // bytes an interrupted pull left: the bar starts there
    case PullEvent::Kind::kLayerRefetching:  // wrong bytes discarded: the bar starts again at 0
    case PullEvent::Kind::kLayerDownloading:
      l.download = Download::kDownloading;
      l.current = event.current;
      if (!started_) started_ = now;
      sample(now);
      break;
    case PullEvent::Kind::kLayerVerifying:
      l.download = Download::kVerifying;
      l.current = event.current;
      sample(now);
      break;
    case PullEvent::Kind::kLayerDownloaded:
      l.download = Download::kDone;
      l.current = l.total;
      sample(now);
      break;
    case PullEvent::Kind::kLayerExtracting:
      l.extracting = true;
      l.extracted = event.current;
      break;
    case PullEvent::Kind::kLayerComplete:
      l.complete = true;
      if (!l.exists) {  // also when another process committed the blob for us
        l.download = Download::kDone;
        l.current = l.total;
        sample(now);
      }
      break;
  }
  bool fetching = false, all_done = true;
  for (const auto& x : layers_) {
    if (x.exists || x.download == Download::kNone) continue;
    fetching = true;
    all_done = all_done && x.download == Download::kDone;
  }
  if (fetching && all_done && !finished_) finished_ = now;
}

uint64_t PullProgress::bytes_done() const {
  uint64_t done = 0;
  for (const auto& l : layers_) {
    if (l.exists || l.download == Download::kNone) continue;
    done += l.download == Download::kDone ? l.total : std::min(l.current, l.total);
  }
  return done;
}

void PullProgress::sample(ProgressClock::time_point now) {
  uint64_t done = bytes_done();
  if (samples_.size() >= 2 && now - samples_.back().at < kSampleSpacing) {
    samples_.back().bytes = done;
  } else {
    samples_.push_back({now, done});
  }
  // Keep one sample at or before the window's start: the baseline.
  while (samples_.size() >= 2 && samples_[1].at <= now - kRateWindow) samples_.pop_front();
}

std::optional<double> PullProgress::rate(ProgressClock::time_point now) const {
  if (samples_.empty()) return std::nullopt;
  const Sample* baseline = &samples_.front();
  for (const auto& s : samples_) {
    if (s.at <= now - kRateWindow) baseline = &s;
  }
  auto span = now - baseline->at;
  if (span < kMinRateSpan) return std::nullopt;
  uint64_t done = samples_.back().bytes;
  double gained = done > baseline->bytes ? static_cast<double>(done - baseline->bytes) : 0.0;
  return gained / std::chrono::duration<double>(span).count();
}

std::string PullProgress::layer_line(const Layer& l, size_t width) const {
  std::string id = l.digest.short_hex() + ": ";
  auto with_bar = [&](std::string_view action, uint64_t current, uint64_t total) {
    std::string numbers = total > 0 && current <= total
                              ? fmt::format("{:>8}/{}", human_size(static_cast<double>(current), 4),
                                            human_size(static_cast<double>(total), 4))
                              : fmt::format("{:>8}", human_size(static_cast<double>(current), 4));
    std::string prefix = id + std::string(action) + " ";
    std::string bar;
    // "[" + cells + ">" + "] " around the numbers, within width - 1 columns.
    size_t used = prefix.size() + numbers.size() + 4;
    size_t room = width > used + 1 ? width - 1 - used : 0;
    size_t cells = std::min(kMaxBarCells, room);
    if (total > 0 && cells >= kMinBarCells) {
      auto filled = static_cast<size_t>(static_cast<double>(std::min(current, total)) / static_cast<double>(total) *
                                        static_cast<double>(cells));
      // Appended piecewise: `"[" + std::string(...)` trips GCC 12's -Wrestrict false positive at -O3.
      bar.append("[").append(filled, '=').append(">").append(cells - filled, ' ').append("] ");
    }
    return prefix + bar + numbers;
  };
  if (l.complete) return id + "Pull complete";
  if (l.exists) {
    if (l.extracting && l.extracted < l.total) return with_bar("Extracting", l.extracted, l.total);
    return id + "Already exists";
  }
  switch (l.download) {
    case Download::kNone: return id + "Pulling fs layer";
    case Download::kWaiting: return id + "Waiting";
    case Download::kDownloading: return with_bar("Downloading", l.current, l.total);
    case Download::kVerifying: return id + "Verifying Checksum";
    case Download::kDone: break;
  }
  if (l.extracting) return l.extracted > 0 ? with_bar("Extracting", l.extracted, l.total) : id + "Extracting";
  return id + "Download complete";
}

std::optional<std::string> PullProgress::total_line(ProgressClock::time_point now) const {
  uint64_t total = 0;
  bool fetching = false;
  for (const auto& l : layers_) {
    if (l.exists || l.download == Download::kNone) continue;
    fetching = true;
    total += l.total;
  }
  if (!fetching) return std::nullopt;
  if (finished_ && started_) {
    double seconds = std::chrono::duration<double>(*finished_ - *started_).count();
    std::string took = seconds < 1    ? fmt::format("{}ms", static_cast<long>(seconds * 1000))
                       : seconds < 60 ? fmt::format("{:.1f}s", seconds)
                                      : human_duration(std::chrono::seconds(static_cast<long>(seconds)));
    std::string line = fmt::format("Downloaded {} in {}", human_size(static_cast<double>(total), 4), took);
    if (seconds > 0) line += fmt::format(" ({}/s)", human_size(static_cast<double>(total) / seconds, 3));
    return line;
  }
  uint64_t done = std::min(bytes_done(), total);
  std::string line = fmt::format("Total: {}/{}", human_size(static_cast<double>(done), 4),
                                 human_size(static_cast<double>(total), 4));
  if (auto r = rate(now)) {
    line += fmt::format("  {}/s", human_size(*r, 3));
    if (*r >= 1) {
      auto left = static_cast<long>(std::ceil(static_cast<double>(total - done) / *r));
      line += "  ETA " + human_duration(std::chrono::seconds(left));
    }
  }
  return line;
}

std::vector<std::string> PullProgress::lines(ProgressClock::time_point now, size_t width) const {
  if (!resolved_) return {};
  if (width == 0) width = kDefaultWidth;
  std::vector<std::string> out;
  out.push_back(truncate(header_, width));
  for (const auto& l : layers_) out.push_back(truncate(layer_line(l, width), width));
  if (auto total = total_line(now)) out.push_back(truncate(*total, width));
  return out;
}

// ---- TerminalScreen ----

std::string TerminalScreen::update(const std::vector<std::string>& frame, size_t width, size_t height,
                                   const std::vector<std::string>& above) {
  if (width == 0) width = kDefaultWidth;
  std::vector<std::string> lines;
  lines.reserve(frame.size());
  for (const auto& l : frame) lines.push_back(truncate(l, width));
  size_t n = drawn_.size();
  // Rows above the cursor still on the screen, and the lines drawn in them.
  size_t rows_up = height > 1 ? height - 1 : (height == 0 ? n : 0);
  size_t reachable = std::min(contiguous_, rows_up);
  size_t first = n - reachable;

  // A narrower terminal that rewraps has split every drawn line wider than it
  // into several rows.
  bool rewrapped = false;
  size_t rows = 0;
  for (size_t i = first; i < n; ++i) {
    size_t len = drawn_[i].size();
    if (width < drawn_width_ && len > width) rewrapped = true;
    rows += len == 0 ? 1 : (len + width - 1) / width;
  }

  std::string out;
  if (rewrapped || !above.empty()) {
    // Clear the frame from its first reachable row and draw it again.
    size_t up = std::min(rewrapped ? rows : reachable, rows_up);
    if (up > 0) out += fmt::format("\x1b[{}A", up);
    out += "\r\x1b[J";
    for (const auto& a : above) out += a + "\n";
    size_t start = std::min(first, lines.size());
    for (size_t i = start; i < lines.size(); ++i) out += lines[i] + "\n";
    contiguous_ = lines.size() - start;
  } else {
    size_t k = first;
    while (k < n && k < lines.size() && drawn_[k] == lines[k]) ++k;
    if (k == n && k == lines.size()) {
      drawn_width_ = width;
      return "";
    }
    if (n > k) out += fmt::format("\x1b[{}A", n - k);
    size_t skipped = 0;
    for (size_t i = k; i < lines.size(); ++i) {
      if (i < n && drawn_[i] == lines[i]) {
        ++skipped;
        continue;
      }
      if (skipped > 0) out += fmt::format("\x1b[{}B", skipped);
      skipped = 0;
      out += "\r" + lines[i] + "\x1b[K\n";
    }
    if (skipped > 0) out += fmt::format("\x1b[{}B", skipped);
    if (lines.size() < n) out += "\r\x1b[J";
    contiguous_ = contiguous_ + lines.size() >= n ? contiguous_ + lines.size() - n : 0;
  }
  drawn_ = std::move(lines);
  drawn_width_ = width;
  return out;
}

// ---- PlainProgress ----

std::optional<std::string> PlainProgress::on_event(const PullEvent& event) const {
  std::string id = event.layer ? event.layer->short_hex() + ": " : "";
  switch (event.kind) {
    case PullEvent::Kind::kResolved: return header_;
    case PullEvent::Kind::kLayerExists: return id + "Already exists";
    case PullEvent::Kind::kLayerWaiting: return id + "Pulling fs layer";
    case PullEvent::Kind::kLayerResumed:
      return id + "Resuming from byte " + std::to_string(event.current) + " of " + std::to_string(event.total);
    case PullEvent::Kind::kLayerRefetching: return id + "Checksum mismatch, downloading again";
    case PullEvent::Kind::kLayerDownloading: return std::nullopt;  // a progress message
    case PullEvent::Kind::kLayerVerifying: return id + "Verifying Checksum";
    case PullEvent::Kind::kLayerDownloaded: return id + "Download complete";
    case PullEvent::Kind::kLayerExtracting: return std::nullopt;  // a progress message
    case PullEvent::Kind::kLayerComplete: return id + "Pull complete";
  }
  return std::nullopt;
}

// ---- --json ----

std::string event_json(const PullEvent& event) {
  nlohmann::ordered_json j;
  j["event"] = kind_name(event.kind);
  if (event.kind == PullEvent::Kind::kResolved) {
    j["layers"] = nlohmann::ordered_json::array();
    for (const auto& d : event.layers) j["layers"].push_back({{"digest", d.digest.str()}, {"size", d.size}});
    return j.dump();
  }
  if (event.layer) j["layer"] = event.layer->str();
  j["current"] = event.current;
  j["total"] = event.total;
  return j.dump();
}

std::string pulled_json(const PullResult& result, const Reference& ref) {
  nlohmann::ordered_json j;
  j["event"] = "pulled";
  j["name"] = result.name;
  j["reference"] = ref.str();
  j["digest"] = (result.repo_digest ? *result.repo_digest : result.manifest_digest).str();
  j["manifest"] = result.manifest_digest.str();
  j["config"] = result.config_digest.str();
  j["up_to_date"] = result.up_to_date;
  j["bytes_downloaded"] = result.bytes_downloaded;
  return j.dump();
}

std::string error_json(const Error& error) {
  nlohmann::ordered_json j;
  j["event"] = "error";
  j["code"] = to_string(error.code());
  j["message"] = error.message();
  return j.dump();
}

}  // namespace imgpull::cli
