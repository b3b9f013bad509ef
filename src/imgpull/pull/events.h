// The pull's progress events (PullEvent, include/imgpull/client.h), handed to
// the caller's callback one at a time although several download threads and
// the rootfs applier report at once.
//
//   PullEvents events(request.on_event);
//   events.layer(PullEvent::Kind::kLayerWaiting, layer);
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "imgpull/client.h"
#include "imgpull/manifest.h"

namespace imgpull {

// Progress is reported once per this many bytes of a layer: enough for a
// smooth bar, few enough to cost nothing.
inline constexpr uint64_t kProgressEveryBytes = 512 * 1024;

class PullEvents {
 public:
  explicit PullEvents(std::function<void(const PullEvent&)> on_event) : on_event_(std::move(on_event)) {}

  void emit(const PullEvent& event) {
    if (!on_event_) return;
    std::lock_guard lock(mutex_);
    on_event_(event);
  }
  void resolved(const std::vector<Descriptor>& layers) {
    emit(PullEvent{PullEvent::Kind::kResolved, std::nullopt, 0, 0, layers});
  }
  void layer(PullEvent::Kind kind, const Descriptor& layer, uint64_t current = 0) {
    emit(PullEvent{kind, layer.digest, current, static_cast<uint64_t>(layer.size), {}});
  }

 private:
  std::function<void(const PullEvent&)> on_event_;
  std::mutex mutex_;
};

}  // namespace imgpull
