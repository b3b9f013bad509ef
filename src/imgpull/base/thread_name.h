// Names the calling thread (at most 15 characters), so that top -H, perf and
// /proc/PID/task/*/comm tell the stages of a pull apart.
#pragma once

#include <pthread.h>

namespace imgpull {

inline void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace imgpull
