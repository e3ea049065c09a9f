#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>

namespace convnet {
namespace {

// How long an idle worker watches for new work before it sleeps.
constexpr std::chrono::microseconds kSpin(200);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// One ParallelFor call: indices are handed out by an atomic counter to the
// caller and to every helper that picks up one of its queued tasks.
struct Loop {
  Loop(size_t n, const std::function<void(size_t)>& body) : n(n), body(body) {}

  // Runs indices until none are left.
  void RunSome() {
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      body(i);
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        absl::MutexLock lock(&mu);
        finished = true;
      }
    }
  }

  const size_t n;
  const std::function<void(size_t)>& body;  // outlives the loop: the caller waits
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  absl::Mutex mu;
  bool finished ABSL_GUARDED_BY(mu) = false;
};

}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)) {
  workers_.reserve(threads_ - 1);
  for (int i = 0; i < threads_ - 1; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::WorkerLoop() {
  while (true) {
    // Waking a sleeping thread takes longer on these virtual machines than a
    // batch of inference does, so a worker that just finished watches for
    // new work for a short while before it sleeps.
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (queued_.load(std::memory_order_acquire) == 0 && std::chrono::steady_clock::now() < spin_until) {
      for (int i = 0; i < 64; ++i) CpuRelax();
    }
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ThreadPool* pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool->mu_) {
            return pool->stopping_ || !pool->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, and nothing left to run
      task = std::move(queue_.front());
      queue_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    task();
  }
}

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t)>& body) {
  if (n == 0) return;
  const size_t helpers = std::min<size_t>(workers_.size(), n - 1);
  if (helpers == 0) {
    for (size_t i = 0; i < n; ++i) body(i);
    return;
  }
  // Shared with the helpers, which may start after this call has returned
  // (they then find no index left and drop their reference).
  auto loop = std::make_shared<Loop>(n, body);
  {
    absl::MutexLock lock(&mu_);
    for (size_t h = 0; h < helpers; ++h) queue_.emplace_back([loop] { loop->RunSome(); });
    queued_.fetch_add(helpers, std::memory_order_release);
  }
  loop->RunSome();
  absl::MutexLock lock(&loop->mu);
  loop->mu.Await(absl::Condition(&loop->finished));
}

size_t ThreadPool::QueueLength() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

}  // namespace convnet
