#include "core/thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace convnet {
namespace {

TEST(ThreadPoolTest, ParallelForRunsEveryIndexExactlyOnce) {
  ThreadPool pool(3);
  for (size_t n : {0u, 1u, 2u, 7u, 1000u}) {
    std::vector<std::atomic<int>> hits(n);
    pool.ParallelFor(n, [&](size_t i) { hits[i].fetch_add(1); });
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

// Each task waits (up to a generous bound) until tasks have run on two
// different threads: a pool that used one thread only would leave every task
// waiting out the bound and the set at one id, whatever the machine's speed.
TEST(ThreadPoolTest, UsesMoreThanOneThreadWhenWorkIsSlow) {
  ThreadPool pool(2);
  std::mutex mu;
  std::condition_variable two_threads_seen;
  std::set<std::thread::id> ids;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  pool.ParallelFor(8, [&](size_t) {
    std::unique_lock<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
    two_threads_seen.notify_all();
    two_threads_seen.wait_until(lock, give_up, [&] { return ids.size() >= 2; });
  });
  EXPECT_EQ(ids.size(), 2u);
}

TEST(ThreadPoolTest, ConcurrentAndNestedCallersAllFinish) {
  ThreadPool pool(2);
  std::atomic<int> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r) {
        pool.ParallelFor(4, [&](size_t) {
          pool.ParallelFor(3, [&](size_t) { total.fetch_add(1); });
        });
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 50 * 4 * 3);
}

TEST(ThreadPoolTest, SingleThreadPoolRunsOnTheCaller) {
  ThreadPool pool(1);
  EXPECT_EQ(pool.threads(), 1);
  const auto caller = std::this_thread::get_id();
  pool.ParallelFor(5, [&](size_t) { EXPECT_EQ(std::this_thread::get_id(), caller); });
  EXPECT_EQ(pool.QueueLength(), 0u);
}

}  // namespace
}  // namespace convnet
