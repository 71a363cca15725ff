// bitlinear: how errors are reported, with or without C++ exceptions.
//
// With exceptions (the default whenever the compiler has them on), every error throws:
//   std::invalid_argument  a bad argument or bad data (wrong sizes, null pointers, non-finite weights, a corrupt file);
//   std::runtime_error     the environment failed (a kernel family this CPU cannot run, a file or stream error).
// Without exceptions (-fno-exceptions, or MSVC without /EHsc), or with BITLINEAR_EXCEPTIONS defined to 0 before
// the first bitlinear include, the same error calls the error handler instead, with its kind and the message an
// exception would carry as what(). The handler must not return: it ends the process (exit, abort, a fatal log).
// If it returns anyway, the library calls std::abort(). The default handler prints the message to stderr and
// aborts. (Leaving the handler by longjmp skips the destructors of the library's locals: leaks at best.)
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "config.hpp"

namespace bitlinear {

enum class ErrorKind {
  invalid_argument,  // thrown as std::invalid_argument when exceptions are on
  runtime_error,     // thrown as std::runtime_error when exceptions are on
};

// kind, and the full message (what() of the exception it replaces, e.g. "bitlinear: in_features is 0; ...").
using ErrorHandler = void (*)(ErrorKind kind, const char* message);

// The installed handler (null: the default one). Outside the versioned ABI namespace on purpose: translation
// units built with different -m flags use different ABI namespaces, but must share one handler.
namespace shared_state {
inline std::atomic<ErrorHandler> error_handler{nullptr};
}  // namespace shared_state

}  // namespace bitlinear

BITLINEAR_NAMESPACE_BEGIN

// Installs `handler` (null restores the default) for the whole process and returns the previous one (null if it
// was the default). Only consulted when exceptions are off; thread-safe.
inline ErrorHandler set_error_handler(ErrorHandler handler) noexcept {
  return shared_state::error_handler.exchange(handler, std::memory_order_acq_rel);
}

namespace detail {

inline void default_error_handler(ErrorKind, const char* message) noexcept {
  std::fputs(message, stderr);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
}

// Reports an error: throws when exceptions are on, otherwise calls the error handler and never returns.
[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) {
#if BITLINEAR_EXCEPTIONS
  if (kind == ErrorKind::runtime_error) throw std::runtime_error(message);
  throw std::invalid_argument(message);
#else
  ErrorHandler handler = shared_state::error_handler.load(std::memory_order_acquire);
  if (handler == nullptr) handler = &default_error_handler;
  handler(kind, message.c_str());
  std::abort();  // the handler returned: nothing sensible can continue
#endif
}

// What `throw std::invalid_argument(message)` and `throw std::runtime_error(message)` did before -fno-exceptions.
[[noreturn]] inline void fail_invalid_argument(const std::string& message) {
  fail(ErrorKind::invalid_argument, message);
}
[[noreturn]] inline void fail_runtime_error(const std::string& message) { fail(ErrorKind::runtime_error, message); }

// The error of BITLINEAR_REQUIRE: invalid argument, message "bitlinear: " + message.
[[noreturn]] inline void throw_invalid_argument(const std::string& message) {
  fail(ErrorKind::invalid_argument, "bitlinear: " + message);
}

}  // namespace detail
BITLINEAR_NAMESPACE_END
