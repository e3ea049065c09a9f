// The exit statuses of convnet_client, the same for every subcommand, so that
// scripts can tell "the server said no" from "there is no server".
#ifndef CONVNET_CLIENT_EXIT_CODES_H_
#define CONVNET_CLIENT_EXIT_CODES_H_

namespace convnet::client {

inline constexpr int kExitOk = 0;
// The server answered with an error status (it refused the request), or
// reported itself NOT_SERVING.
inline constexpr int kExitRefused = 1;
// A usage error or bad local input (unknown subcommand, unreadable image file...).
inline constexpr int kExitUsage = 2;
// The server could not be reached (UNAVAILABLE) or did not answer in time
// (DEADLINE_EXCEEDED).
inline constexpr int kExitUnreachable = 3;
// A training job finished FAILED or CANCELLED.
inline constexpr int kExitJobFailed = 4;

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_EXIT_CODES_H_
