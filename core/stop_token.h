// When a long batch computation should give up: a deadline, a cancel flag, a
// cancel check, or any of them. Predict, ComputeGradient and ExplainGradient
// (network.h) check it once per task of about 16 examples, never per example,
// so that a server can stop a request whose client has stopped waiting. A
// default StopToken never fires and is not even looked at: it costs one branch
// per task.
//
// StopCheck is one call's view of a token, shared by the tasks of that call's
// ParallelFor: the first task that sees the token fire latches it, and why
// (the deadline or a cancellation), and the tasks that start afterwards skip
// their work without reading the clock.
#ifndef CONVNET_CORE_STOP_TOKEN_H_
#define CONVNET_CORE_STOP_TOKEN_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace convnet {

class StopToken {
 public:
  // Never fires.
  StopToken() = default;
  // Fires once `deadline` has passed (absl::InfiniteFuture(): never), as soon
  // as *cancelled is true (null: no flag), or when `is_cancelled` (empty: none)
  // returns true. The flag must outlive every computation that checks the
  // token. `is_cancelled` is called at the start of a task by whichever thread
  // runs it, so it must be safe to call from any thread; it may answer false on
  // threads where it cannot tell (a server asks gRPC on the handler's thread
  // only, and the handler's thread runs its share of the tasks).
  explicit StopToken(absl::Time deadline, const std::atomic<bool>* cancelled = nullptr,
                     std::function<bool()> is_cancelled = nullptr)
      : deadline_(deadline), cancelled_(cancelled), is_cancelled_(std::move(is_cancelled)) {}

  // True when the token can never fire (no deadline, no flag, no check).
  bool never() const {
    return deadline_ == absl::InfiniteFuture() && cancelled_ == nullptr && !is_cancelled_;
  }

  // True when the token is cancelled or the deadline has passed. Reads the
  // clock only when there is a deadline.
  bool fired() const { return cancelled() || deadline_passed(); }

  // True when the flag is set or the check says so.
  bool cancelled() const {
    if (cancelled_ != nullptr && cancelled_->load(std::memory_order_relaxed)) return true;
    return is_cancelled_ && is_cancelled_();
  }

  bool deadline_passed() const { return deadline_ != absl::InfiniteFuture() && absl::Now() >= deadline_; }

  absl::Time deadline() const { return deadline_; }

 private:
  absl::Time deadline_ = absl::InfiniteFuture();
  const std::atomic<bool>* cancelled_ = nullptr;
  std::function<bool()> is_cancelled_;
};

// One computation's checks of a StopToken, safe to call from every task of a
// ParallelFor at once.
class StopCheck {
 public:
  explicit StopCheck(const StopToken& token) : token_(token), active_(!token.never()) {}

  StopCheck(const StopCheck&) = delete;
  StopCheck& operator=(const StopCheck&) = delete;

  // Called at the start of each task: true when the task must skip its work
  // (the token has fired, now or for an earlier task).
  bool ShouldStop() {
    if (!active_) return false;
    if (stopped()) return true;
    // The deadline first: a passed deadline also cancels a gRPC call, and the
    // caller must hear DEADLINE_EXCEEDED, not CANCELLED.
    Why why;
    if (token_.deadline_passed()) {
      why = kDeadline;
    } else if (token_.cancelled()) {
      why = kCancelled;
    } else {
      return false;
    }
    // Latches the stop and its reason: the first reason seen wins.
    Why running = kRunning;
    why_.compare_exchange_strong(running, why, std::memory_order_relaxed);
    return true;
  }

  // Called at the end of each task that did its work, with the number of
  // examples it handled (only counted when the token can fire).
  void Done(size_t examples) {
    if (active_) done_.fetch_add(examples, std::memory_order_relaxed);
  }

  bool stopped() const { return why_.load(std::memory_order_relaxed) != kRunning; }

  // After the tasks have finished: OK when the token never fired, else
  // CANCELLED or DEADLINE_EXCEEDED saying how far `what` got, e.g.
  // "Predict stopped after 48 of 1024 images: the deadline passed".
  absl::Status status(absl::string_view what, size_t total, absl::string_view noun) const {
    if (!stopped()) return absl::OkStatus();
    const size_t done = done_.load(std::memory_order_relaxed);
    if (why_.load(std::memory_order_relaxed) == kCancelled) {
      return absl::CancelledError(
          absl::StrFormat("%s stopped after %d of %d %s: cancelled", what, done, total, noun));
    }
    return absl::DeadlineExceededError(
        absl::StrFormat("%s stopped after %d of %d %s: the deadline passed", what, done, total, noun));
  }

 private:
  enum Why { kRunning, kDeadline, kCancelled };

  const StopToken& token_;
  const bool active_;
  std::atomic<Why> why_{kRunning};  // whether, and why, the computation stopped
  std::atomic<size_t> done_{0};
};

}  // namespace convnet

#endif  // CONVNET_CORE_STOP_TOKEN_H_
