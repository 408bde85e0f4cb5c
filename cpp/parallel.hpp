// A minimal parallel-for over an index range on std::thread, without global state:
// workers pull indices from a shared counter, so uneven items balance themselves.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace hashmatch {

// More threads than this are never useful and only exhaust the process's thread limit.
constexpr int kMaxThreads = 1024;

// Runs fn(i) for i in [0, n) on up to `threads` threads (0 or less: hardware concurrency).
// The first exception thrown by fn is rethrown in the caller after all workers stop.
template <class Fn>
void parallel_for(std::size_t n, int threads, Fn&& fn) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min(threads, kMaxThreads);
  const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(threads), n);
  if (workers <= 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&]() {
    for (std::size_t i = next++; i < n; i = next++) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next = n;  // stop handing out work
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (std::size_t t = 1; t < workers; ++t) {
    // A thread that cannot be started (a process or container thread limit) must not escape
    // with the others still running (std::terminate): carry on with the ones we have.
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;
    }
  }
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace hashmatch
