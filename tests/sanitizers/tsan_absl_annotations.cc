// Makes Debian's Abseil synchronisation visible to ThreadSanitizer.
//
// Debian's libabsl_synchronization is not built with -fsanitize=thread, so
// TSan sees neither absl::Mutex nor absl::Notification synchronise anything
// and reports every access guarded by them as a data race (checked: two
// threads incrementing a counter under absl::MutexLock are reported). Building
// Abseil from source with TSan in CI would cost more than all of our tests.
//
// Instead, scripts/sanitize LD_PRELOADs this small library into the TSan test
// runs. It interposes the Abseil entry points that our code and Abseil itself
// call (through the PLT, so calls from inside libabsl are caught as well),
// calls the real function, and tells TSan what happened:
//   - taking a mutex (Lock, ReaderLock, TryLock that succeeds, LockWhen,
//     ReaderLockWhen, and returning from Await*, which re-acquires it) is an
//     acquire of the mutex's address, and so is every evaluation of a
//     Condition (Abseil evaluates them with the mutex held, also in other
//     threads);
//   - releasing it (Unlock, ReaderUnlock, entering Await*, which releases it
//     while it waits) is a release of the same address;
//   - Notification::Notify releases, returning from WaitForNotification
//     acquires.
// Limits: readers are treated like writers (a write made while holding only
// a reader lock would go unnoticed), and TSan's lock-order (deadlock) checks
// do not see these mutexes. Data races on everything else (plain fields,
// std::atomic, std::mutex, thread start and join) are found as usual.
//
// The library is built without TSan and resolves the __tsan_* hooks weakly,
// so that in a process without TSan (ctest itself) it only forwards.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* address) __attribute__((weak));
void __tsan_release(void* address) __attribute__((weak));
}

namespace {

#define CONVNET_STRINGIZE_INNER(x) #x
#define CONVNET_STRINGIZE(x) CONVNET_STRINGIZE_INNER(x)

// The mangled name of absl::<inline namespace>::<rest>, e.g. rest
// "5Mutex4LockEv" gives "_ZN4absl7debian35Mutex4LockEv"; const member
// functions start with "_ZNK".
std::string Mangled(bool is_const, const char* rest) {
  const std::string ns = CONVNET_STRINGIZE(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return std::string(is_const ? "_ZNK4absl" : "_ZN4absl") + std::to_string(ns.size()) + ns + rest;
}

template <typename Fn>
Fn Real(bool is_const, const char* rest) {
  const std::string name = Mangled(is_const, rest);
  void* symbol = dlsym(RTLD_NEXT, name.c_str());
  if (symbol == nullptr) {
    std::fprintf(stderr, "tsan_absl_annotations: %s not found: %s\n", name.c_str(), dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(symbol);
}

void Acquire(const void* address) {
  if (__tsan_acquire != nullptr) __tsan_acquire(const_cast<void*>(address));
}
void Release(const void* address) {
  if (__tsan_release != nullptr) __tsan_release(const_cast<void*>(address));
}

// Abseil evaluates a waiter's Condition while holding the mutex, inside Await
// and LockWhen (after an internal re-lock that TSan does not see) or in the
// thread that unlocks. Wrapping the condition lets each evaluation acquire
// the mutex first, so that the data the condition reads is ordered after the
// last release, and release it after, so that the next holder's writes are
// ordered after these reads.
struct AnnotatedCondition {
  const absl::Condition* inner;
  const void* mutex;
};

bool EvalAnnotated(AnnotatedCondition* condition) {
  Acquire(condition->mutex);
  const bool result = condition->inner->Eval();
  // The evaluating thread still holds the mutex, and the next one to take it
  // must see these reads as before its writes (a false condition goes back to
  // waiting, releasing the mutex inside Abseil, unseen).
  Release(condition->mutex);
  return result;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>(false, "5Mutex4LockEv");
  real(this);
  Acquire(this);
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>(false, "5Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>(false, "5Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>(false, "5Mutex6UnlockEv");
  Release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>(false, "5Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(false, "5Mutex8LockWhenERKNS0_9ConditionE");
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  real(this, wrapped);
  Acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>(false, "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  real(this, wrapped);
  Acquire(this);
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      false, "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  const bool result = real(this, wrapped, deadline);
  Acquire(this);  // held on return either way
  return result;
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      false, "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  const bool result = real(this, wrapped, timeout);
  Acquire(this);
  return result;
}

void Mutex::Await(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(false, "5Mutex5AwaitERKNS0_9ConditionE");
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  Release(this);
  real(this, wrapped);
  Acquire(this);
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      false, "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  Release(this);
  const bool result = real(this, wrapped, deadline);
  Acquire(this);
  return result;
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      false, "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  AnnotatedCondition annotated{&cond, this};
  const Condition wrapped(&EvalAnnotated, &annotated);
  Release(this);
  const bool result = real(this, wrapped, timeout);
  Acquire(this);
  return result;
}

void Notification::Notify() {
  static const auto real = Real<void (*)(Notification*)>(false, "12Notification6NotifyEv");
  Release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static const auto real = Real<void (*)(const Notification*)>(true, "12Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}

ABSL_NAMESPACE_END
}  // namespace absl
