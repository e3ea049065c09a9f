// A fixed-size pool of worker threads built on absl::Mutex, shared by batch
// inference and data-parallel gradient computation (and, in the server, by
// every request and training job).
//
// ParallelFor is the one entry point: the calling thread takes part in its own
// loop, so a call always makes progress even when every worker is busy with
// other callers' work, and nested or concurrent calls cannot deadlock. An idle
// worker watches for new work for 200 us before it sleeps, so back-to-back
// batches do not pay a thread wake-up each.
#ifndef CONVNET_CORE_THREAD_POOL_H_
#define CONVNET_CORE_THREAD_POOL_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace convnet {

class ThreadPool {
 public:
  // `threads` is the total parallelism of a ParallelFor, the caller included:
  // the pool starts threads - 1 workers. threads < 1 is treated as 1.
  explicit ThreadPool(int threads);
  ~ThreadPool();  // finishes queued work, then joins the workers

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  // Runs body(i) for every i in [0, n), spread over up to threads() threads,
  // and returns when all have finished. Which thread runs which i is not fixed;
  // callers that need determinism make each body(i) depend on i alone.
  void ParallelFor(size_t n, const std::function<void(size_t)>& body);

  // Tasks waiting for a worker (for statistics).
  size_t QueueLength() const;

 private:
  void WorkerLoop();

  const int threads_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> queued_{0};  // queue_.size(), readable without the lock
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace convnet

#endif  // CONVNET_CORE_THREAD_POOL_H_
